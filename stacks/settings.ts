/**
 * deriveSettings(spec): the ONE function both deploy engines (SSH engine, Pulumi program) use to turn
 * a site spec into what is applied on the host. Host facts that change the outcome (the achievable
 * nofile limit) come in as an explicit argument, so both engines clamp the same way.
 */
import { createHash } from 'node:crypto';
import type { SiteSpec } from './spec.ts';

export interface HostFacts {
  /** Highest nofile a container can get on this host (dockerd's hard limit, fs.nr_open); absent = unknown. */
  nofileMax?: number;
}

export interface NetworkSettings {
  name: string;
  driver: 'macvlan';
  parent: string;
  subnet: string;
  gateway: string;
  options: Record<string, string>;
}

export interface ContainerSettings {
  name: string;
  image: string;
  hostname: string;
  ip: string;
  mac: string;
  dns: string[];
  env: Record<string, string>;
  /** "host:container[:opts]" */
  binds: string[];
  restart: 'unless-stopped';
  ulimits: { name: 'nofile'; soft: number; hard: number }[];
  privileged: boolean;
  capAdd: string[];
  logConfig: { type: 'json-file'; config: Record<string, string> };
  labels: Record<string, string>;
}

export interface HostSettings {
  /** Keys merged into /etc/docker/daemon.json (other keys are kept). */
  daemonJson: Record<string, unknown>;
  /** Keys of daemonJson that dockerd reloads on SIGHUP; the others need a restart to apply. */
  reloadableKeys: string[];
  limitsFile: { path: string; content: string };
  /** sysctls raised only when the host's value is below. */
  sysctlMin: Record<string, number>;
  /** Where the raised sysctls are persisted for the next boot (only the raised keys are written). */
  sysctlFile: { path: string; header: string };
  /** systemd drop-ins (only written when systemd runs). */
  systemdDropIns: { path: string; content: string }[];
  /** CVMFS client config (only written when a cvmfs client is installed). */
  cvmfsDefaultLocal: { path: string; content: string };
  /** Directories created on the host before the container starts. */
  directories: { path: string; mode: string }[];
}

export interface DeploySettings {
  site: string;
  network: NetworkSettings;
  /** Host-side macvlan interface so the host reaches its VO-box (route to the VO-box ip). */
  shim?: { name: string; ip: string; parent: string; prefix: number; route: string };
  container: ContainerSettings;
  host: HostSettings;
  /** nofile requested by the spec and what is applied (clamped to facts.nofileMax). */
  nofile: { requested: number; applied: number; clamped: boolean };
  /** sha256 over everything that defines the container; stored as a label to detect drift fast. */
  settingsHash: string;
  cvmfs: { mount: string; repositories: string[] };
  services: string[];
}

export const LABEL_MANAGED = 'io.gridforge.managed-by';
/** The value of LABEL_MANAGED on everything gridforge creates (containers, networks). */
export const MANAGED_BY = 'gridforge';
export const LABEL_SITE = 'io.gridforge.site';
export const LABEL_HASH = 'io.gridforge.settings-hash';

/** Stable JSON (sorted keys) for hashing. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function deriveSettings(spec: SiteSpec, facts: HostFacts = {}): DeploySettings {
  const v = spec.vobox;
  const n = v.network;
  const requested = v.limits.nofile;
  const applied = facts.nofileMax !== undefined ? Math.min(requested, facts.nofileMax) : requested;
  const env: Record<string, string> = { GRIDFORGE_SERVICES: v.services.join(',') };
  if (v.jalien?.version) env.JALIEN_VERSION = v.jalien.version;
  // The Slurm client of the VO-box (sites/README.md "Batch client"): the site's munge key (installed for
  // munged by gridforge-batch-start) and slurm.conf, or configless from the controller.
  const slurm = v.batch?.slurm;
  const batchBinds = slurm ? [`${slurm.mungeKey}:/etc/gridforge/site/munge.key:ro`, ...(slurm.conf ? [`${slurm.conf}:/etc/slurm/slurm.conf:ro`] : [])] : [];
  if (slurm?.configless) env.SLURM_CONF_SERVER = slurm.configless;
  const prefix = Number(n.subnet.split('/')[1]);
  const containerBase = {
    name: v.name,
    image: v.image,
    hostname: v.hostname,
    ip: n.ip,
    mac: n.mac,
    dns: [...n.dns],
    env,
    binds: [`${v.cvmfs.mount}:/cvmfs:shared`, `${v.volumes.home}:/home/alicesgm`, `${v.volumes.gridSecurity}:/etc/grid-security`, ...batchBinds],
    restart: 'unless-stopped' as const,
    ulimits: [{ name: 'nofile' as const, soft: applied, hard: applied }],
    privileged: v.privileged,
    capAdd: [...v.capabilities],
    logConfig: { type: 'json-file' as const, config: { 'max-size': v.logs.maxSize, 'max-file': String(v.logs.maxFile) } },
  };
  const network: NetworkSettings = { name: n.name, driver: 'macvlan', parent: n.parent, subnet: n.subnet, gateway: n.gateway, options: { parent: n.parent } };
  const settingsHash = createHash('sha256').update(stableJson({ containerBase, network })).digest('hex').slice(0, 16);
  const container: ContainerSettings = {
    ...containerBase,
    labels: { [LABEL_MANAGED]: MANAGED_BY, [LABEL_SITE]: spec.site, [LABEL_HASH]: settingsHash },
  };
  const limitContent =
    `# written by gridforge for site ${spec.site} (VO-box ${v.name})\n` + `*    soft nofile ${applied}\n*    hard nofile ${applied}\nroot soft nofile ${applied}\nroot hard nofile ${applied}\n`;
  const dropIn = `# written by gridforge: containers inherit the engine's fd limit\n[Service]\nLimitNOFILE=${applied}\n`;
  return {
    site: spec.site,
    network,
    shim: n.shim ? { name: n.shim.name, ip: n.shim.ip, parent: n.parent, prefix, route: `${n.ip}/32` } : undefined,
    container,
    host: {
      daemonJson: {
        'live-restore': true,
        'default-ulimits': { nofile: { Name: 'nofile', Soft: applied, Hard: applied } },
        'log-driver': 'json-file',
        'log-opts': { 'max-size': v.logs.maxSize, 'max-file': String(v.logs.maxFile) },
      },
      reloadableKeys: ['live-restore'],
      limitsFile: { path: '/etc/security/limits.d/90-gridforge-nofile.conf', content: limitContent },
      sysctlMin: { 'fs.nr_open': applied, 'fs.file-max': applied * 4 },
      sysctlFile: { path: '/etc/sysctl.d/90-gridforge-nofile.conf', header: '# written by gridforge' },
      systemdDropIns: [
        { path: '/etc/systemd/system/docker.service.d/90-gridforge-nofile.conf', content: dropIn },
        { path: '/etc/systemd/system/containerd.service.d/90-gridforge-nofile.conf', content: dropIn },
      ],
      cvmfsDefaultLocal: {
        path: '/etc/cvmfs/default.local',
        content: `# written by gridforge for site ${spec.site}\nCVMFS_REPOSITORIES=${v.cvmfs.repositories.join(',')}\n`,
      },
      directories: [
        { path: v.volumes.home, mode: '0755' },
        { path: v.volumes.gridSecurity, mode: '0755' },
      ],
    },
    nofile: { requested, applied, clamped: applied < requested },
    settingsHash,
    cvmfs: { mount: v.cvmfs.mount, repositories: [...v.cvmfs.repositories] },
    services: [...v.services],
  };
}
