/**
 * Plan: compare what the spec wants (deriveSettings) with what the host has, and list exactly the
 * changes deploy would make. Reading only; nothing on the host changes.
 */
import { GridforgeError, UsageError } from '../base/errors.ts';
import { apiAtLeast } from './docker-api.ts';
import { resolveImageSource, type ImageSource } from './image-source.ts';
import { nofileMax, readHostState, type HostState, type Session } from './session.ts';
import { deriveSettings, LABEL_HASH, stableJson, type DeploySettings } from './settings.ts';
import type { SiteSpec } from './spec.ts';

export type ChangeKind =
  | 'directories'
  | 'daemon-json'
  | 'limits'
  | 'sysctl'
  | 'systemd-dropin'
  | 'cvmfs-config'
  | 'network'
  | 'shim'
  | 'image'
  | 'container';

export interface Change {
  kind: ChangeKind;
  action: 'create' | 'update' | 'replace' | 'start' | 'load' | 'pull' | 'reload';
  target: string;
  detail: string;
}

export interface Plan {
  site: string;
  host: string;
  apiVersion: string;
  changes: Change[];
  warnings: string[];
  settings: DeploySettings;
  /** internals deploy uses */
  state: {
    host: HostState;
    image: ImageSource;
    desiredImageId: string | null;
    container: any | null;
    network: any | null;
    mergedDaemonJson: Record<string, unknown>;
    sysctl: Record<string, number>;
    missingDirs: string[];
    shimPresent: boolean;
  };
}

export interface Overrides {
  image?: string;
  jalienVersion?: string;
  recreateNetwork?: boolean;
}

export function applyOverrides(spec: SiteSpec, o: Overrides = {}): SiteSpec {
  const copy = structuredClone(spec) as SiteSpec;
  if (o.image) copy.vobox.image = o.image;
  if (o.jalienVersion) copy.vobox.jalien = { version: o.jalienVersion };
  return copy;
}

function mergeDaemonJson(current: string | null, want: Record<string, unknown>, where: string): Record<string, unknown> {
  let cur: Record<string, unknown> = {};
  if (current && current.trim()) {
    try {
      cur = JSON.parse(current);
    } catch (err) {
      throw new GridforgeError(`/etc/docker/daemon.json on the host is not valid JSON: ${(err as Error).message}`, { where, hint: 'Fix daemon.json on the host by hand; gridforge merges into it and will not overwrite a file it cannot read.' });
    }
  }
  return { ...cur, ...want };
}

export async function computePlan(s: Session, spec: SiteSpec, overrides: Overrides = {}): Promise<Plan> {
  const label = s.ssh.label;
  const base = deriveSettings(spec);
  // Independent reads in parallel (one SSH connection, several channels).
  const [host, net, container, image] = await Promise.all([
    readHostState(s, {
      limits: base.host.limitsFile.path,
      cvmfsLocal: base.host.cvmfsDefaultLocal.path,
      dropIns: base.host.systemdDropIns.map((d) => d.path),
      dirs: base.host.directories.map((d) => d.path),
    }),
    s.docker.inspectNetwork(base.network.name),
    s.docker.inspectContainer(base.container.name),
    resolveImageSource(base.container.image, `${spec.file ?? 'site file'}: vobox.image`),
  ]);
  // With systemd the drop-ins raise the engine's limit (up to fs.nr_open); without, dockerd's
  // current hard limit is what containers can get.
  const max = host.systemd ? host.nrOpen : nofileMax(host);
  const settings = deriveSettings(spec, { nofileMax: max });
  const warnings: string[] = [];
  if (settings.nofile.clamped) {
    warnings.push(
      `nofile ${settings.nofile.requested} requested, but this host allows at most ${max} (dockerd/containerd hard limit${host.systemd ? '' : ', no systemd to raise it'}, fs.nr_open ${host.nrOpen}): clamped to ${settings.nofile.applied}`,
    );
  }
  const changes: Change[] = [];

  // Directories for the persistent volumes.
  const missingDirs = host.missingDirs;
  if (missingDirs.length) changes.push({ kind: 'directories', action: 'create', target: missingDirs.join(', '), detail: 'persistent volumes' });

  // daemon.json: merged, keep unrelated keys.
  const merged = mergeDaemonJson(host.daemonJsonText, settings.host.daemonJson, `${label}:/etc/docker/daemon.json`);
  let current: Record<string, unknown> = {};
  try {
    current = host.daemonJsonText ? JSON.parse(host.daemonJsonText) : {};
  } catch {
    /* handled in merge */
  }
  const changedKeys = Object.keys(settings.host.daemonJson).filter((k) => stableJson(current[k]) !== stableJson(settings.host.daemonJson[k]));
  if (changedKeys.length) {
    const reload = changedKeys.filter((k) => settings.host.reloadableKeys.includes(k));
    const later = changedKeys.filter((k) => !settings.host.reloadableKeys.includes(k));
    changes.push({
      kind: 'daemon-json',
      action: host.daemonJsonText === null ? 'create' : 'update',
      target: '/etc/docker/daemon.json',
      detail:
        `set ${changedKeys.join(', ')} (other keys kept)` +
        (reload.length ? `; reload dockerd (SIGHUP) for ${reload.join(', ')}` : '') +
        (later.length ? `; ${later.join(', ')} apply to new containers after the next dockerd restart (this VO-box sets them itself)` : ''),
    });
  }
  if (host.limitsText !== settings.host.limitsFile.content) {
    changes.push({ kind: 'limits', action: host.limitsText === null ? 'create' : 'update', target: settings.host.limitsFile.path, detail: `nofile ${settings.nofile.applied}` });
  }
  const sysctl: Record<string, number> = {};
  const have: Record<string, number> = { 'fs.nr_open': host.nrOpen, 'fs.file-max': host.fileMax };
  for (const [k, v] of Object.entries(settings.host.sysctlMin)) if ((have[k] ?? 0) < v) sysctl[k] = v;
  if (Object.keys(sysctl).length) {
    changes.push({ kind: 'sysctl', action: 'update', target: Object.keys(sysctl).join(', '), detail: Object.entries(sysctl).map(([k, v]) => `${k} ${have[k]} -> ${v}`).join(', ') });
  }
  if (host.systemd) {
    for (const d of settings.host.systemdDropIns) {
      if (host.dropIns[d.path] !== d.content) changes.push({ kind: 'systemd-dropin', action: host.dropIns[d.path] === null ? 'create' : 'update', target: d.path, detail: `LimitNOFILE=${settings.nofile.applied}; daemon-reload and restart (live-restore keeps containers)` });
    }
  }
  if (host.cvmfsClient && host.cvmfsLocalText !== settings.host.cvmfsDefaultLocal.content) {
    if (host.cvmfsLocalText !== null && !host.cvmfsLocalText.startsWith('# written by gridforge')) {
      warnings.push(`${settings.host.cvmfsDefaultLocal.path} exists and was not written by gridforge: left alone; make sure CVMFS_REPOSITORIES includes ${settings.cvmfs.repositories.join(',')}`);
    } else {
      changes.push({ kind: 'cvmfs-config', action: host.cvmfsLocalText === null ? 'create' : 'update', target: settings.host.cvmfsDefaultLocal.path, detail: `CVMFS_REPOSITORIES=${settings.cvmfs.repositories.join(',')}` });
    }
  }

  // Network.
  if (!net) {
    changes.push({ kind: 'network', action: 'create', target: settings.network.name, detail: `macvlan parent=${settings.network.parent} subnet=${settings.network.subnet} gateway=${settings.network.gateway}` });
  } else {
    const cfg = net.IPAM?.Config?.[0] ?? {};
    const mismatch: string[] = [];
    if (net.Driver !== 'macvlan') mismatch.push(`driver ${net.Driver} (want macvlan)`);
    if (net.Options?.parent !== settings.network.parent) mismatch.push(`parent ${net.Options?.parent} (want ${settings.network.parent})`);
    if (cfg.Subnet !== settings.network.subnet) mismatch.push(`subnet ${cfg.Subnet} (want ${settings.network.subnet})`);
    if (cfg.Gateway && cfg.Gateway !== settings.network.gateway) mismatch.push(`gateway ${cfg.Gateway} (want ${settings.network.gateway})`);
    if (mismatch.length) {
      if (!overrides.recreateNetwork) {
        throw new UsageError(`Docker network ${settings.network.name} on ${label} differs from the site file: ${mismatch.join(', ')}`, {
          where: `${spec.file ?? 'site file'}: vobox.network`,
          hint: 'Fix vobox.network, or run deploy with --recreate-network to remove and recreate the network (containers on it are disconnected).',
        });
      }
      changes.push({ kind: 'network', action: 'replace', target: settings.network.name, detail: `recreate: ${mismatch.join(', ')}` });
    }
    // Someone else on our IP or MAC?
    for (const [id, ep] of Object.entries<any>(net.Containers ?? {})) {
      if (ep.Name === settings.container.name || ep.Name === `${settings.container.name}-previous`) continue;
      const ip = String(ep.IPv4Address ?? '').split('/')[0];
      if (ip === settings.container.ip) throw new UsageError(`ip ${ip} is already used on ${label} by container ${ep.Name} (${id.slice(0, 12)})`, { where: `${spec.file ?? 'site file'}: vobox.network.ip`, hint: 'Pick a free address for this VO-box.' });
      if (String(ep.MacAddress ?? '').toLowerCase() === settings.container.mac) throw new UsageError(`mac ${settings.container.mac} is already used on ${label} by container ${ep.Name}`, { where: `${spec.file ?? 'site file'}: vobox.network.mac`, hint: 'Give each VO-box its own MAC address.' });
    }
  }
  let shimPresent = false;
  if (settings.shim) {
    const r = await s.ssh.exec(`ip -o link show dev ${settings.shim.name}`);
    shimPresent = r.code === 0;
    if (!shimPresent) changes.push({ kind: 'shim', action: 'create', target: settings.shim.name, detail: `macvlan on ${settings.shim.parent} with ${settings.shim.ip}, route ${settings.container.ip}/32` });
  }

  // Image.
  let desiredImageId: string | null = null;
  if (image.kind === 'registry') {
    const ii = await s.docker.inspectImage(image.ref);
    desiredImageId = ii?.Id ?? null;
    if (!ii) changes.push({ kind: 'image', action: 'pull', target: image.ref, detail: 'pull on the host' });
  } else {
    desiredImageId = image.id;
    const ii = await s.docker.inspectImage(image.id);
    if (!ii) changes.push({ kind: 'image', action: 'load', target: image.kind === 'archive' ? image.path : image.ref, detail: `stream over SSH and docker load (${image.id.slice(0, 19)})` });
  }

  // Container.
  if (!container) {
    changes.push({ kind: 'container', action: 'create', target: settings.container.name, detail: describeContainer(settings) });
  } else {
    const why: string[] = [];
    if (container.Config?.Labels?.[LABEL_HASH] !== settings.settingsHash) why.push(diffContainer(container, settings) || 'settings changed');
    if (desiredImageId === null || container.Image !== desiredImageId) why.push(`image ${String(container.Image).slice(0, 19)} -> ${desiredImageId ? desiredImageId.slice(0, 19) : settings.container.image}`);
    if (why.length) changes.push({ kind: 'container', action: 'replace', target: settings.container.name, detail: `${why.join('; ')} (previous kept as ${settings.container.name}-previous until healthy)` });
    else if (!container.State?.Running) changes.push({ kind: 'container', action: 'start', target: settings.container.name, detail: `state ${container.State?.Status}` });
  }
  if (settings.container.privileged) warnings.push('privileged: true: deploy probes whether this host can start privileged containers and fails with a fix if not');
  if (!apiAtLeast(s.api.apiVersion, '1.44')) {
    /* per-endpoint MAC not supported: container-level MacAddress is used (noted in describeContainer) */
  }
  return {
    site: spec.site,
    host: label,
    apiVersion: s.api.apiVersion,
    changes,
    warnings,
    settings,
    state: { host, image, desiredImageId, container, network: net, mergedDaemonJson: merged, sysctl, missingDirs, shimPresent },
  };
}

/** The plan as lines of text (what `site plan` prints, and what a refused deploy shows). */
export function formatPlan(plan: Plan): string[] {
  if (!plan.changes.length) return [`${plan.site} on ${plan.host}: no changes`];
  return [
    `${plan.site} on ${plan.host} (Docker API ${plan.apiVersion}): ${plan.changes.length} change(s)`,
    ...plan.changes.map((c) => `  ${c.action.padEnd(7)} ${c.kind.padEnd(14)} ${c.target}: ${c.detail}`),
  ];
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

function diffContainer(ct: any, st: DeploySettings): string {
  const d: string[] = [];
  const ep = ct.NetworkSettings?.Networks?.[st.network.name];
  const ip = ep?.IPAMConfig?.IPv4Address ?? ep?.IPAddress;
  if (ip !== st.container.ip) d.push(`ip ${ip ?? '-'} -> ${st.container.ip}`);
  const mac = (ep?.MacAddress || ct.Config?.MacAddress || '').toLowerCase();
  if (mac && mac !== st.container.mac) d.push(`mac ${mac} -> ${st.container.mac}`);
  if (ct.Config?.Hostname && ct.Config.Hostname !== st.container.hostname && `${ct.Config.Hostname}.${ct.Config.Domainname}` !== st.container.hostname) d.push(`hostname ${ct.Config.Hostname} -> ${st.container.hostname}`);
  const env = new Map<string, string>((ct.Config?.Env ?? []).map((e: string) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]));
  for (const [k, v] of Object.entries(st.container.env)) if (env.get(k) !== v) d.push(`${k} ${env.get(k) ?? '-'} -> ${v}`);
  if (!st.container.env.JALIEN_VERSION && env.has('JALIEN_VERSION')) d.push(`JALIEN_VERSION ${env.get('JALIEN_VERSION')} -> (unpinned)`);
  const nofile = (ct.HostConfig?.Ulimits ?? []).find((u: any) => u.Name === 'nofile');
  if (nofile?.Hard !== st.nofile.applied) d.push(`nofile ${nofile?.Hard ?? '-'} -> ${st.nofile.applied}`);
  if (stableJson(ct.HostConfig?.Binds ?? []) !== stableJson(st.container.binds)) d.push('volumes');
  if (stableJson(ct.HostConfig?.Dns ?? []) !== stableJson(st.container.dns)) d.push(`dns -> ${st.container.dns.join(',')}`);
  return d.join(', ');
}
