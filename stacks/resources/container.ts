/**
 * The VO-box container: created from the settings (Docker API body per API version: per-endpoint
 * MAC from 1.44, container-level before), replaced when its settings-hash label or image differ
 * (the old one kept as `<name>-previous` until the new one is healthy: stacks/deploy.ts), started
 * when stopped. Also the same container as @pulumi/docker Container inputs (containerArgs).
 */
import { GridforgeError } from '../../base/errors.ts';
import { apiAtLeast, type DockerApi, type DockerApiError } from '../docker-api.ts';
import type { Session } from '../session.ts';
import { LABEL_HASH, stableJson, type DeploySettings } from '../settings.ts';
import { desiredImageId, imageRefOf } from './image.ts';
import type { Change, Log, Resource } from './types.ts';

export const previousName = (name: string) => `${name}-previous`;

/** Docker API body of `POST /containers/create`, in the shape `apiVersion` accepts. */
export function containerCreateBody(st: DeploySettings, image: string, apiVersion: string) {
  const c = st.container;
  const perEndpointMac = apiAtLeast(apiVersion, '1.44');
  const endpoint: Record<string, unknown> = { IPAMConfig: { IPv4Address: c.ip } };
  if (perEndpointMac) endpoint.MacAddress = c.mac;
  const body: Record<string, unknown> = {
    Image: image,
    Hostname: c.hostname,
    Env: Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
    Labels: c.labels,
    HostConfig: {
      Binds: c.binds,
      RestartPolicy: { Name: c.restart, MaximumRetryCount: 0 },
      Ulimits: c.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
      Privileged: c.privileged,
      CapAdd: c.capAdd.length ? c.capAdd : null,
      Dns: c.dns,
      LogConfig: { Type: c.logConfig.type, Config: c.logConfig.config },
      NetworkMode: st.network.name,
    },
    NetworkingConfig: { EndpointsConfig: { [st.network.name]: endpoint } },
  };
  if (!perEndpointMac) body.MacAddress = c.mac;
  return body;
}

/** "host:container[:opts]" -> a @pulumi/docker bind mount. */
export function bindToMount(bind: string): { type: 'bind'; source: string; target: string; readOnly?: boolean; bindOptions?: { propagation: string } } {
  const [source, target, opts] = bind.split(':');
  const m: ReturnType<typeof bindToMount> = { type: 'bind', source, target };
  if (opts === 'shared' || opts === 'rshared' || opts === 'slave' || opts === 'rslave') m.bindOptions = { propagation: opts };
  if (opts === 'ro') m.readOnly = true;
  return m;
}

/** The container as @pulumi/docker Container inputs (image and network attachment added by the program). */
export function containerArgs(st: DeploySettings) {
  const c = st.container;
  return {
    name: c.name,
    hostname: c.hostname,
    dns: c.dns,
    envs: Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
    labels: Object.entries(c.labels).map(([label, value]) => ({ label, value })),
    mounts: c.binds.map(bindToMount),
    networkMode: st.network.name,
    restart: c.restart,
    ulimits: c.ulimits.map((u) => ({ name: u.name, soft: u.soft, hard: u.hard })),
    privileged: c.privileged,
    capabilities: c.capAdd.length ? { adds: c.capAdd } : undefined,
    logDriver: c.logConfig.type,
    logOpts: c.logConfig.config,
    mustRun: true,
  };
}

export function describeContainer(st: DeploySettings): string {
  const c = st.container;
  return [
    `image ${c.image}`,
    `ip ${c.ip}`,
    `mac ${c.mac}`,
    `hostname ${c.hostname}`,
    c.dns.length ? `dns ${c.dns.join(',')}` : '',
    `nofile ${st.nofile.applied}`,
    c.privileged ? 'privileged' : c.capAdd.length ? `cap-add ${c.capAdd.join(',')}` : '',
    `services ${c.env.GRIDFORGE_SERVICES}`,
    c.env.JALIEN_VERSION ? `JAliEn ${c.env.JALIEN_VERSION}` : '',
    `binds ${c.binds.join(' ')}`,
  ]
    .filter(Boolean)
    .join(', ');
}

/** What differs between a running container (inspect) and the settings, for the plan's detail. */
export function diffContainer(ct: any, st: DeploySettings): string {
  const d: string[] = [];
  const ep = ct.NetworkSettings?.Networks?.[st.network.name];
  const ip = ep?.IPAMConfig?.IPv4Address ?? ep?.IPAddress;
  if (ip !== st.container.ip) d.push(`ip ${ip ?? '-'} -> ${st.container.ip}`);
  const mac = (ep?.MacAddress || ct.Config?.MacAddress || '').toLowerCase();
  if (mac && mac !== st.container.mac) d.push(`mac ${mac} -> ${st.container.mac}`);
  if (ct.Config?.Hostname && ct.Config.Hostname !== st.container.hostname && `${ct.Config.Hostname}.${ct.Config.Domainname}` !== st.container.hostname) d.push(`hostname ${ct.Config.Hostname} -> ${st.container.hostname}`);
  const env = envOf(ct);
  for (const [k, v] of Object.entries(st.container.env)) if (env.get(k) !== v) d.push(`${k} ${env.get(k) ?? '-'} -> ${v}`);
  if (!st.container.env.JALIEN_VERSION && env.has('JALIEN_VERSION')) d.push(`JALIEN_VERSION ${env.get('JALIEN_VERSION')} -> (unpinned)`);
  const nofile = (ct.HostConfig?.Ulimits ?? []).find((u: any) => u.Name === 'nofile');
  if (nofile?.Hard !== st.nofile.applied) d.push(`nofile ${nofile?.Hard ?? '-'} -> ${st.nofile.applied}`);
  if (stableJson(ct.HostConfig?.Binds ?? []) !== stableJson(st.container.binds)) d.push('volumes');
  if (stableJson(ct.HostConfig?.Dns ?? []) !== stableJson(st.container.dns)) d.push(`dns -> ${st.container.dns.join(',')}`);
  return d.join(', ');
}

/** A container's environment (inspect Config.Env) as a map. */
export function envOf(ct: any): Map<string, string> {
  return new Map<string, string>((ct?.Config?.Env ?? []).map((e: string) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]));
}

/** Can this host start privileged containers? (some kernels refuse: "unable to apply caps") */
export async function probePrivileged(docker: DockerApi, image: string, name: string): Promise<{ ok: boolean; error?: string }> {
  const probe = `${name}-privprobe`;
  await docker.call('DELETE', `/containers/${probe}?force=1`, undefined, [404]);
  try {
    await docker.call('POST', `/containers/create?name=${probe}`, { Image: image, Entrypoint: ['true'], Cmd: [], HostConfig: { Privileged: true, NetworkMode: 'none' } });
    await docker.call('POST', `/containers/${probe}/start`);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    await docker.call('DELETE', `/containers/${probe}?force=1`, undefined, [404]).catch(() => {});
  }
}

/** Remove the new container and, when there was one, rename `<name>-previous` back and start it. */
export async function rollbackContainer(s: Session, st: DeploySettings, hadPrevious: boolean, log: Log): Promise<void> {
  const name = st.container.name;
  await s.docker.call('DELETE', `/containers/${name}?force=1`, undefined, [404]).catch(() => {});
  if (!hadPrevious) return;
  log(`restoring the previous container ${name}`);
  await s.docker.call('POST', `/containers/${previousName(name)}/rename?name=${name}`);
  await s.docker.call('POST', `/containers/${name}/start`, undefined, [304]).catch((err: DockerApiError) => log(`warning: previous container did not start: ${err.message}`));
}

export const container: Resource = {
  kinds: ['container'],
  describe: () => 'the VO-box container (replaced with the previous one kept until healthy)',
  diff(d, o): Change[] {
    const st = d.settings;
    const ct = o.container;
    if (!ct) return [{ kind: 'container', action: 'create', target: st.container.name, detail: describeContainer(st) }];
    const want = desiredImageId(o);
    const why: string[] = [];
    if (ct.Config?.Labels?.[LABEL_HASH] !== st.settingsHash) why.push(diffContainer(ct, st) || 'settings changed');
    if (want === null || ct.Image !== want) why.push(`image ${String(ct.Image).slice(0, 19)} -> ${want ? want.slice(0, 19) : st.container.image}`);
    if (why.length) return [{ kind: 'container', action: 'replace', target: st.container.name, detail: `${why.join('; ')} (previous kept as ${previousName(st.container.name)} until healthy)` }];
    if (!ct.State?.Running) return [{ kind: 'container', action: 'start', target: st.container.name, detail: `state ${ct.State?.Status}` }];
    return [];
  },
  warnings(d) {
    return d.settings.container.privileged ? ['privileged: true: deploy probes whether this host can start privileged containers and fails with a fix if not'] : [];
  },
  async apply(s, d, o, changes, log) {
    const change = changes[0];
    if (!change) return;
    const st = d.settings;
    const name = st.container.name;
    const image = imageRefOf(o.image.source);
    if (st.container.privileged) {
      const p = await probePrivileged(s.docker, image, name);
      if (!p.ok) {
        throw new GridforgeError(`this host refuses privileged containers (${p.error})`, {
          where: `${d.file}: vobox.privileged`,
          hint: 'Replace `privileged: true` with a capability list, e.g. capabilities: [NET_ADMIN, SYS_ADMIN].',
        });
      }
    }
    if (change.action === 'start') {
      log(`starting ${name}`);
      await s.docker.call('POST', `/containers/${name}/start`, undefined, [304]);
      return;
    }
    const hadPrevious = change.action === 'replace';
    if (hadPrevious) {
      await s.docker.call('DELETE', `/containers/${previousName(name)}?force=1`, undefined, [404]);
      log(`stopping ${name}, keeping it as ${previousName(name)}`);
      await s.docker.call('POST', `/containers/${name}/stop?t=10`, undefined, [304]);
      await s.docker.call('POST', `/containers/${name}/rename?name=${previousName(name)}`);
    }
    // A stopped container holds no endpoint: its static IP/MAC are free for the new one.
    log(`creating ${name} (${st.container.ip}, ${st.container.mac}, nofile ${st.nofile.applied})`);
    try {
      const c = await s.docker.call('POST', `/containers/create?name=${encodeURIComponent(name)}`, containerCreateBody(st, image, o.apiVersion));
      await s.docker.call('POST', `/containers/${c.data.Id}/start`);
    } catch (err) {
      await rollbackContainer(s, st, hadPrevious, log);
      throw new GridforgeError(`cannot start ${name}: ${(err as Error).message}${hadPrevious ? `; previous container restored` : ''}`, { where: s.ssh.label, cause: err });
    }
  },
  async destroy(s, d, log) {
    const name = d.settings.container.name;
    const removed: string[] = [];
    for (const n of [name, previousName(name), `${name}-privprobe`]) {
      const r = await s.docker.call('DELETE', `/containers/${n}?force=1&v=0`, undefined, [404]);
      if (r.status !== 404) {
        removed.push(`container ${n}`);
        log(`removed container ${n}`);
      }
    }
    return { removed, kept: [] };
  },
};
