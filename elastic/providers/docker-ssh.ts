/**
 * Provider "docker-ssh": worker nodes as containers on Docker hosts reached over SSH, through the
 * deploy engine's session (stacks/session.ts: SSH with a pinned host key + the Docker API over the
 * forwarded socket). Each node is a container `gf-<site>-<node>` labelled with site and node, on the
 * site's MACVLAN network (the one the VO-box deploy makes, stacks/resources/network.ts) with its own
 * address, the site's munge key and /cvmfs bound from the host. Node i lives on host (i-1) mod N.
 */
import { GridforgeError } from '../../base/errors.ts';
import type { SiteSpec } from '../../stacks/index.ts';
import { resolveDeployImage } from '../../stacks/deploy-image.ts';
import { loadImage } from '../../stacks/resources/image.ts';
import { openSession, type Session } from '../../stacks/session.ts';
import type { Pool, ProviderHost } from '../pool.ts';
import { LABEL_NODE, LABEL_SITE, type NodeResource, type NodeSpec, type Provider } from '../provider.ts';

export function containerName(pool: Pool, node: string): string {
  return `gf-${pool.site.toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}-${node}`;
}

function label(h: ProviderHost): string {
  return `${h.user}@${h.address}:${h.port}`;
}

export function createBody(pool: Pool, n: NodeSpec) {
  return {
    Image: pool.image,
    Hostname: n.node,
    Env: [`GRIDFORGE_NODE=${n.node}`, `GRIDFORGE_CONF_SERVER=${pool.controller}`, ...(n.fault ? [`GRIDFORGE_WN_FAULT=${n.fault}`] : [])],
    Labels: { [LABEL_SITE]: pool.site, [LABEL_NODE]: n.node },
    HostConfig: {
      Init: true,
      NanoCpus: pool.cpus * 1e9,
      Memory: pool.memoryMb * 1048576,
      Binds: [`${pool.mungeKey}:/etc/gridforge/site/munge.key:ro`, `${pool.cvmfs}:/cvmfs:ro,rslave`],
      NetworkMode: pool.networkName,
      RestartPolicy: { Name: 'no' },
    },
    NetworkingConfig: { EndpointsConfig: { [pool.networkName]: { IPAMConfig: { IPv4Address: n.address } } } },
  };
}

export class DockerSshProvider implements Provider {
  private sessions = new Map<number, Promise<Session>>();
  constructor(
    private readonly pool: Pool,
    private readonly spec: SiteSpec,
  ) {}

  private session(i: number): Promise<Session> {
    let s = this.sessions.get(i);
    if (!s) {
      const h = this.pool.hostsResolved[i];
      s = openSession({ ...this.spec, host: { ...this.spec.host, ...h, agent: undefined, keepAliveIntervalMs: 5000 } } as SiteSpec);
      s.catch(() => this.sessions.delete(i));
      this.sessions.set(i, s);
    }
    return s;
  }

  private hostOf(node: string): number {
    const i = this.pool.nodes.indexOf(node); // a node outside the pool (reap): the first host
    return i < 0 ? 0 : i % this.pool.hostsResolved.length;
  }

  async prepare(): Promise<string[]> {
    const said: string[] = [];
    for (let i = 0; i < this.pool.hostsResolved.length; i++) {
      const s = await this.session(i);
      const where = label(this.pool.hostsResolved[i]);
      if (!(await s.docker.inspectImage(this.pool.image))) {
        const src = await resolveDeployImage(this.pool.image, 'elastic.image');
        if (src.kind === 'registry') {
          const r = await s.docker.raw('POST', `/v${s.docker.apiVersion}/images/create?fromImage=${encodeURIComponent(src.ref)}`);
          if (r.status >= 400) throw new GridforgeError(`pull of ${src.ref} on ${where} failed: ${r.body.toString().slice(0, 300)}`, { where: 'elastic.image' });
        } else await loadImage(s.docker, src, where);
        said.push(`${where}: image ${this.pool.image} loaded`);
      }
      if (!(await s.docker.inspectNetwork(this.pool.networkName))) {
        const v = this.spec.vobox.network;
        await s.docker.call('POST', '/networks/create', { Name: this.pool.networkName, Driver: 'macvlan', CheckDuplicate: true, Options: { parent: v.parent }, IPAM: { Driver: 'default', Config: [{ Subnet: v.subnet, Gateway: v.gateway }] } });
        said.push(`${where}: MACVLAN network ${this.pool.networkName} on ${v.parent} created`);
      }
    }
    return said;
  }

  async create(n: NodeSpec): Promise<{ address: string; id: string; where: string }> {
    const i = this.hostOf(n.node);
    const s = await this.session(i);
    const where = label(this.pool.hostsResolved[i]);
    const name = containerName(this.pool, n.node);
    // A leftover of an earlier life of this node (a killed resume): replaced, never reused.
    await this.destroy(n.node);
    try {
      if (!(await s.docker.inspectImage(this.pool.image)) || !(await s.docker.inspectNetwork(this.pool.networkName))) await this.prepare();
      const c = await s.docker.call('POST', `/containers/create?name=${encodeURIComponent(name)}`, createBody(this.pool, n));
      await s.docker.call('POST', `/containers/${c.data.Id}/start`);
      return { address: n.address, id: String(c.data.Id).slice(0, 12), where };
    } catch (err) {
      await this.destroy(n.node).catch(() => {});
      throw new GridforgeError(`worker node ${n.node} on ${where} did not start: ${(err as Error).message}`, { where, hint: 'see the provider host: docker logs, the image and the MACVLAN network (gridforge elastic prepare)' });
    }
  }

  async destroy(node: string): Promise<boolean> {
    const s = await this.session(this.hostOf(node));
    const name = containerName(this.pool, node);
    const r = await s.docker.call('DELETE', `/containers/${encodeURIComponent(name)}?force=1&v=1`, undefined, [404]);
    return r.status !== 404;
  }

  async list(): Promise<NodeResource[]> {
    const out: NodeResource[] = [];
    for (let i = 0; i < this.pool.hostsResolved.length; i++) {
      const s = await this.session(i);
      const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_SITE}=${this.pool.site}`] }));
      const r = await s.docker.call('GET', `/containers/json?all=1&filters=${filters}`);
      for (const c of r.data as any[]) {
        const eps = Object.values<any>(c.NetworkSettings?.Networks ?? {});
        out.push({ node: c.Labels?.[LABEL_NODE] ?? '?', id: String(c.Id).slice(0, 12), where: label(this.pool.hostsResolved[i]), address: eps[0]?.IPAMConfig?.IPv4Address ?? eps[0]?.IPAddress, state: c.State, createdAt: new Date(c.Created * 1000).toISOString() });
      }
    }
    return out;
  }

  close(): void {
    for (const s of this.sessions.values()) s.then((x) => x.close(), () => {});
    this.sessions.clear();
  }
}
