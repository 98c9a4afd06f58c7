/**
 * The MACVLAN network and its host-side shim: the one place that knows the VO-box sits on the site
 * LAN through a Docker macvlan network on `parent` (with its subnet and gateway), that a macvlan
 * parent cannot reach its own children (hence the optional shim interface plus a /32 route), and
 * which checks keep two containers off one IP or MAC. Used by the SSH engine (plan/deploy/destroy),
 * preflight (networkMismatch, addressUsers) and the Pulumi program (networkArgs, hostScript).
 */
import { UsageError } from '../../base/errors.ts';
import { shellQuote } from '../../base/shell-quote.ts';
import { GridforgeError } from '../../base/errors.ts';
import { LABEL_MANAGED, MANAGED_BY, type DeploySettings } from '../settings.ts';
import type { Change, Resource } from './types.ts';

/** Docker API body of `POST /networks/create`. */
export function networkCreateBody(st: DeploySettings) {
  return {
    Name: st.network.name,
    Driver: st.network.driver,
    CheckDuplicate: true,
    Options: st.network.options,
    IPAM: { Driver: 'default', Config: [{ Subnet: st.network.subnet, Gateway: st.network.gateway }] },
    Labels: { [LABEL_MANAGED]: MANAGED_BY },
  };
}

/** The same network as @pulumi/docker Network inputs. */
export function networkArgs(st: DeploySettings) {
  return {
    name: st.network.name,
    driver: st.network.driver,
    options: st.network.options,
    ipamConfigs: [{ subnet: st.network.subnet, gateway: st.network.gateway }],
    labels: [{ label: LABEL_MANAGED, value: MANAGED_BY }],
  };
}

/** How an existing Docker network differs from the settings (empty: it matches). */
export function networkMismatch(st: DeploySettings, net: any): string[] {
  const cfg = net.IPAM?.Config?.[0] ?? {};
  const out: string[] = [];
  if (net.Driver !== 'macvlan') out.push(`driver ${net.Driver} (want macvlan)`);
  if (net.Options?.parent !== st.network.parent) out.push(`parent ${net.Options?.parent} (want ${st.network.parent})`);
  if (cfg.Subnet !== st.network.subnet) out.push(`subnet ${cfg.Subnet} (want ${st.network.subnet})`);
  if (cfg.Gateway && cfg.Gateway !== st.network.gateway) out.push(`gateway ${cfg.Gateway} (want ${st.network.gateway})`);
  return out;
}

/** Other containers on the network holding this VO-box's IP or MAC (its own and -previous skipped). */
export function addressUsers(st: DeploySettings, net: any | null): { ip?: { id: string; name: string }; mac?: { id: string; name: string }; others: number } {
  const out: { ip?: { id: string; name: string }; mac?: { id: string; name: string }; others: number } = { others: 0 };
  for (const [id, ep] of Object.entries<any>(net?.Containers ?? {})) {
    if (ep.Name === st.container.name || ep.Name === `${st.container.name}-previous`) continue;
    out.others++;
    if (!out.ip && String(ep.IPv4Address ?? '').split('/')[0] === st.container.ip) out.ip = { id, name: ep.Name };
    if (!out.mac && String(ep.MacAddress ?? '').toLowerCase() === st.container.mac) out.mac = { id, name: ep.Name };
  }
  return out;
}

function shimCommands(st: DeploySettings): { add: string; route: string } | null {
  const sh = st.shim;
  if (!sh) return null;
  const n = shellQuote(sh.name);
  return {
    add: `ip link add ${n} link ${shellQuote(sh.parent)} type macvlan mode bridge && ip addr add ${shellQuote(`${sh.ip}/32`)} dev ${n} && ip link set ${n} up`,
    route: `ip route replace ${shellQuote(sh.route)} dev ${n}`,
  };
}

export const network: Resource = {
  kinds: ['network', 'shim'],
  describe: () => 'macvlan Docker network on the LAN interface, and the optional host shim',
  diff(d, o) {
    const st = d.settings;
    const changes: Change[] = [];
    const where = `${d.file}: vobox.network`;
    if (!o.network) {
      changes.push({ kind: 'network', action: 'create', target: st.network.name, detail: `macvlan parent=${st.network.parent} subnet=${st.network.subnet} gateway=${st.network.gateway}` });
    } else {
      const mismatch = networkMismatch(st, o.network);
      if (mismatch.length) {
        if (!d.recreateNetwork) {
          throw new UsageError(`Docker network ${st.network.name} on ${o.hostLabel} differs from the site file: ${mismatch.join(', ')}`, {
            where,
            hint: 'Fix vobox.network, or run deploy with --recreate-network to remove and recreate the network (containers on it are disconnected).',
          });
        }
        changes.push({ kind: 'network', action: 'replace', target: st.network.name, detail: `recreate: ${mismatch.join(', ')}` });
      }
      const users = addressUsers(st, o.network);
      if (users.ip) throw new UsageError(`ip ${st.container.ip} is already used on ${o.hostLabel} by container ${users.ip.name} (${users.ip.id.slice(0, 12)})`, { where: `${where}.ip`, hint: 'Pick a free address for this VO-box.' });
      if (users.mac) throw new UsageError(`mac ${st.container.mac} is already used on ${o.hostLabel} by container ${users.mac.name}`, { where: `${where}.mac`, hint: 'Give each VO-box its own MAC address.' });
    }
    if (st.shim && o.host.shimPresent === false) {
      changes.push({ kind: 'shim', action: 'create', target: st.shim.name, detail: `macvlan on ${st.shim.parent} with ${st.shim.ip}, route ${st.shim.route}` });
    }
    return changes;
  },
  async apply(s, d, o, changes, log) {
    const st = d.settings;
    const net = changes.find((c) => c.kind === 'network');
    if (net) {
      const path = `/networks/${encodeURIComponent(st.network.name)}`;
      if (net.action === 'replace') {
        log(`recreating network ${st.network.name}`);
        for (const id of Object.keys(o.network?.Containers ?? {})) await s.docker.call('POST', `${path}/disconnect`, { Container: id, Force: true }, [404]);
        await s.docker.call('DELETE', path, undefined, [404]);
      }
      log(`creating macvlan network ${st.network.name} on ${st.network.parent}`);
      try {
        await s.docker.call('POST', '/networks/create', networkCreateBody(st));
      } catch (err) {
        throw new GridforgeError(`cannot create network ${st.network.name}: ${(err as Error).message}`, { where: s.ssh.label, hint: `Check that ${st.network.parent} exists on the host and no other network uses ${st.network.subnet} on it.` });
      }
    }
    const shim = shimCommands(st);
    if (shim && changes.some((c) => c.kind === 'shim')) {
      log(`adding host-side macvlan shim ${st.shim!.name}`);
      await s.ssh.run(`${shim.add} && ${shim.route}`, 'cannot create the macvlan shim');
    }
  },
  async destroy(s, d, log) {
    const st = d.settings;
    const removed: string[] = [];
    const kept: string[] = [];
    const net = await s.docker.inspectNetwork(st.network.name);
    if (net) {
      if (Object.keys(net.Containers ?? {}).length === 0) {
        await s.docker.call('DELETE', `/networks/${encodeURIComponent(st.network.name)}`, undefined, [404]);
        removed.push(`network ${st.network.name}`);
        log(`removed network ${st.network.name}`);
      } else kept.push(`network ${st.network.name} (other containers attached)`);
    }
    if (st.shim) {
      const r = await s.ssh.exec(`ip link del ${shellQuote(st.shim.name)}`);
      if (r.code === 0) removed.push(`shim ${st.shim.name}`);
    }
    return { removed, kept };
  },
  hostScript(st) {
    const shim = shimCommands(st);
    if (!shim) return [];
    return [`ip -o link show dev ${shellQuote(st.shim!.name)} >/dev/null 2>&1 || { ${shim.add}; }`, shim.route];
  },
};
