/**
 * Apply a plan over SSH: host configuration, network, image, container, health; restore the previous
 * container when health fails. Every step is idempotent (it compares desired and actual first), so a
 * dropped connection is repaired by running deploy again.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { containerCreateBody, networkCreateBody } from './container.ts';
import { DockerApi, DockerApiError } from './docker-api.ts';
import { checkHealth, serviceLogTail, waitHealthy, type HealthResult } from './health.ts';
import { imageStream, type ImageSource } from './image-source.ts';
import { applyOverrides, computePlan, formatPlan, type Change, type Overrides, type Plan } from './plan.ts';
import { openSession, type Session } from './session.ts';
import { deriveSettings, LABEL_MANAGED, type DeploySettings } from './settings.ts';
import type { SiteSpec } from './spec.ts';
import { q } from './ssh.ts';

export interface PreviousState {
  image: string;
  imageId: string;
  jalienVersion: string | null;
}

export interface DeployOptions {
  overrides?: { image?: string; jalienVersion?: string };
  recreateNetwork?: boolean;
  /** Apply without asking. Without it, `confirm` is asked; without both, deploy refuses (UsageError). */
  yes?: boolean;
  confirm?: (plan: Plan) => Promise<boolean>;
  onProgress?: (message: string) => void;
  healthTimeoutMs?: number;
}

export interface DeployResult {
  site: string;
  host: string;
  changed: boolean;
  changes: Change[];
  warnings: string[];
  container: { name: string; id: string; image: string; imageId: string; ip: string; mac: string };
  nofile: { requested: number; applied: number; clamped: boolean };
  health: HealthResult;
  previous: PreviousState | null;
  apiVersion: string;
  durationMs: number;
}

export async function planSite(spec: SiteSpec, overrides: Overrides = {}): Promise<Plan> {
  const s = await openSession(spec);
  try {
    return await computePlan(s, applyOverrides(spec, overrides), overrides);
  } finally {
    s.close();
  }
}

function previousOf(ct: any | null): PreviousState | null {
  if (!ct) return null;
  const env = new Map<string, string>((ct.Config?.Env ?? []).map((e: string) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]));
  return { image: ct.Config?.Image, imageId: ct.Image, jalienVersion: env.get('JALIEN_VERSION') ?? null };
}

export async function deploySite(spec: SiteSpec, opts: DeployOptions = {}): Promise<DeployResult> {
  const t0 = Date.now();
  const log = opts.onProgress ?? (() => {});
  const overrides: Overrides = { ...opts.overrides, recreateNetwork: opts.recreateNetwork };
  const eff = applyOverrides(spec, overrides);
  const s = await openSession(eff);
  try {
    log(`connected to ${s.ssh.label} (Docker ${s.api.serverVersion}, API ${s.api.apiVersion})`);
    // The health read runs alongside the plan: a no-op deploy then costs one round of reads.
    const settings0 = deriveSettings(eff);
    const [plan, health0] = await Promise.all([computePlan(s, eff, overrides), checkHealth(s.docker, settings0.container.name, settings0.services)]);
    for (const w of plan.warnings) log(`warning: ${w}`);
    if (plan.changes.length && !opts.yes) {
      const ok = opts.confirm ? await opts.confirm(plan) : false;
      if (!ok) {
        throw new UsageError(`deploy of ${spec.site} needs confirmation (${plan.changes.length} change(s) planned)`, {
          where: spec.file,
          hint: 'Review the plan below, then run deploy with --yes (or from a terminal to be asked).',
          detail: formatPlan(plan).join('\n'),
        });
      }
    }
    const previous = previousOf(plan.state.container);
    if (!plan.changes.length) {
      return result(plan, false, health0, plan.state.container, previous, t0, s);
    }
    await applyHost(s, plan, log);
    const imageRef = await ensureImage(s, plan, log);
    const health = await applyContainer(s, eff, plan, imageRef, opts.healthTimeoutMs ?? 120_000, log);
    const ct = await s.docker.inspectContainer(plan.settings.container.name);
    return result(plan, true, health, ct, previous, t0, s);
  } finally {
    s.close();
  }
}

function result(plan: Plan, changed: boolean, health: HealthResult, ct: any, previous: PreviousState | null, t0: number, s: Session): DeployResult {
  const st = plan.settings;
  return {
    site: plan.site,
    host: plan.host,
    changed,
    changes: plan.changes,
    warnings: plan.warnings,
    container: { name: st.container.name, id: ct?.Id ?? '', image: ct?.Config?.Image ?? st.container.image, imageId: ct?.Image ?? '', ip: st.container.ip, mac: st.container.mac },
    nofile: st.nofile,
    health,
    // What ran before, when this deploy replaced the container (for restoreSite / rollouts).
    previous: changed && plan.changes.some((c) => c.kind === 'container' && c.action === 'replace') ? previous : null,
    apiVersion: s.api.apiVersion,
    durationMs: Date.now() - t0,
  };
}

async function applyHost(s: Session, plan: Plan, log: (m: string) => void): Promise<void> {
  const st = plan.settings;
  const has = (k: Change['kind']) => plan.changes.find((c) => c.kind === k);
  if (has('directories')) {
    log(`creating ${plan.state.missingDirs.join(', ')}`);
    await s.ssh.run(`mkdir -p ${plan.state.missingDirs.map(q).join(' ')}`, 'cannot create volume directories');
  }
  if (has('daemon-json')) {
    log('merging /etc/docker/daemon.json');
    await s.ssh.writeFile('/etc/docker/daemon.json', `${JSON.stringify(plan.state.mergedDaemonJson, null, 2)}\n`);
    // Reload (SIGHUP): live-restore is applied without restarting dockerd.
    await s.ssh.run('kill -HUP $(cat /var/run/docker.pid 2>/dev/null || pidof dockerd)', 'cannot reload dockerd (SIGHUP)');
    for (let i = 0; i < 50; i++) {
      const info = await s.docker.call('GET', '/info');
      if (info.data.LiveRestoreEnabled === true) break;
      if (i === 49) throw new GridforgeError('dockerd did not enable live-restore after reload', { where: s.ssh.label, hint: 'Check the host dockerd log; daemon.json may hold a key that conflicts with a dockerd flag.' });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (has('limits')) {
    log(`writing ${st.host.limitsFile.path}`);
    await s.ssh.writeFile(st.host.limitsFile.path, st.host.limitsFile.content);
  }
  if (has('sysctl')) {
    const lines = Object.entries(plan.state.sysctl).map(([k, v]) => `${k} = ${v}`);
    log(`raising ${lines.join(', ')}`);
    await s.ssh.writeFile('/etc/sysctl.d/90-gridforge-nofile.conf', `# written by gridforge\n${lines.join('\n')}\n`);
    const r = await s.ssh.exec(Object.entries(plan.state.sysctl).map(([k, v]) => `sysctl -w ${k}=${v}`).join(' && '));
    if (r.code !== 0) log(`warning: cannot set ${lines.join(', ')} now (${r.stderr.trim()}); written to /etc/sysctl.d for the next boot`);
  }
  const dropIns = plan.changes.filter((c) => c.kind === 'systemd-dropin');
  if (dropIns.length) {
    for (const d of st.host.systemdDropIns) await s.ssh.writeFile(d.path, d.content);
    log('systemctl daemon-reload; restarting containerd and docker for LimitNOFILE (live-restore keeps containers running)');
    await s.ssh.run('systemctl daemon-reload && systemctl restart containerd && systemctl restart docker', 'cannot restart docker after changing LimitNOFILE');
    for (let i = 0; i < 100; i++) {
      try {
        await s.docker.negotiate();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  if (has('cvmfs-config')) {
    log(`writing ${st.host.cvmfsDefaultLocal.path}`);
    await s.ssh.writeFile(st.host.cvmfsDefaultLocal.path, st.host.cvmfsDefaultLocal.content);
    await s.ssh.exec('command -v cvmfs_config >/dev/null && cvmfs_config reload >/dev/null 2>&1; true');
  }
  const net = has('network');
  if (net) {
    if (net.action === 'replace') {
      log(`recreating network ${st.network.name}`);
      for (const id of Object.keys(plan.state.network?.Containers ?? {})) {
        await s.docker.call('POST', `/networks/${encodeURIComponent(st.network.name)}/disconnect`, { Container: id, Force: true }, [404]);
      }
      await s.docker.call('DELETE', `/networks/${encodeURIComponent(st.network.name)}`, undefined, [404]);
    }
    log(`creating macvlan network ${st.network.name} on ${st.network.parent}`);
    try {
      await s.docker.call('POST', '/networks/create', networkCreateBody(st));
    } catch (err) {
      throw new GridforgeError(`cannot create network ${st.network.name}: ${(err as Error).message}`, { where: s.ssh.label, hint: `Check that ${st.network.parent} exists on the host and no other network uses ${st.network.subnet} on it.` });
    }
  }
  if (has('shim') && st.shim) {
    const sh = st.shim;
    log(`adding host-side macvlan shim ${sh.name}`);
    await s.ssh.run(
      `ip link add ${sh.name} link ${sh.parent} type macvlan mode bridge && ip addr add ${sh.ip}/32 dev ${sh.name} && ip link set ${sh.name} up && ip route replace ${st.container.ip}/32 dev ${sh.name}`,
      'cannot create the macvlan shim',
    );
  }
  // autofs: trigger every repository's mount before the container starts (avoids ELOOP inside).
  const trig = await s.ssh.exec(st.cvmfs.repositories.map((r) => `ls ${q(`${st.cvmfs.mount}/${r}`)}/ >/dev/null 2>&1 || echo ${r}`).join('; '));
  const missing = trig.stdout.split('\n').filter(Boolean);
  if (missing.length) log(`warning: CVMFS repositories not available under ${st.cvmfs.mount}: ${missing.join(', ')}`);
}

async function ensureImage(s: Session, plan: Plan, log: (m: string) => void): Promise<string> {
  const src = plan.state.image;
  const change = plan.changes.find((c) => c.kind === 'image');
  if (src.kind === 'registry') {
    if (change) {
      log(`pulling ${src.ref} on the host`);
      const [from, tag] = splitRef(src.ref);
      const r = await s.docker.raw('POST', `/v${s.docker.apiVersion}/images/create?fromImage=${encodeURIComponent(from)}&tag=${encodeURIComponent(tag)}`);
      const err = r.status >= 400 ? r.body.toString() : DockerApi.progressErrors(r.body);
      if (err) throw new GridforgeError(`cannot pull ${src.ref} on ${s.ssh.label}: ${err.trim()}`, { where: s.ssh.label, hint: 'Check the reference and the host registry access, or give a local archive / local image.' });
    }
    return src.ref;
  }
  if (change) {
    log(`streaming ${src.kind === 'archive' ? src.path : src.ref} to ${s.ssh.label} (docker load)`);
    await loadImage(s.docker, src, s.ssh.label, log);
  }
  return src.kind === 'local-engine' ? src.ref : src.id;
}

/** Bytes that pass through, counted on the way (no 'data' listener: it must not read ahead of the pipe). */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Stream an archive / `docker save` into the host's /images/load and check the image is there.
 * The source is opened only once the forwarded socket is up (docker-api.ts raw calls the opener):
 * a stream that starts flowing before the request exists loses its first bytes, which dockerd
 * reports as "archive/tar: invalid tar header" (opening an SSH channel across a WAN takes a round trip).
 */
export async function loadImage(docker: DockerApi, src: Exclude<ImageSource, { kind: 'registry' }>, where: string, log: (m: string) => void = () => {}): Promise<void> {
  const counter = new ByteCounter();
  let done: Promise<void> = Promise.resolve();
  const open = () => {
    const img = imageStream(src);
    done = img.done;
    done.catch(() => {}); // awaited below on success; a failed request reports its own error
    // pipeline: a read error fails the upload (no half-sent body left waiting), a failed upload closes the source.
    pipeline(img.stream, counter, () => {});
    return counter;
  };
  const t0 = Date.now();
  const mib = () => (counter.bytes / 1048576).toFixed(0);
  // Progress every few seconds while the image streams (hundreds of MiB over SSH).
  const tick = setInterval(() => log(`  streamed ${mib()} MiB (${(counter.bytes / 1048576 / ((Date.now() - t0) / 1000)).toFixed(1)} MiB/s)`), 5000);
  let r;
  try {
    r = await docker.raw('POST', `/v${docker.apiVersion}/images/load?quiet=1`, open);
  } finally {
    clearInterval(tick);
  }
  log(`  loaded ${mib()} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const sourceErr = await done.then(
    () => null,
    (e: Error) => e.message,
  );
  const err = r.status >= 400 ? r.body.toString() : DockerApi.progressErrors(r.body);
  // The daemon's verdict first: a source that stopped early because the daemon hung up only says "broken pipe".
  if (err) throw new GridforgeError(`docker load on ${where} failed: ${err.trim()}`, { where, detail: sourceErr ?? undefined });
  if (sourceErr) throw new GridforgeError(`cannot stream the image to ${where}: ${sourceErr}`, { where });
  if (!(await docker.inspectImage(src.id))) throw new GridforgeError(`image ${src.id} not present after load`, { where });
}

function splitRef(ref: string): [string, string] {
  const at = ref.indexOf('@');
  if (at > 0) return [ref, ''];
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
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

async function applyContainer(s: Session, spec: SiteSpec, plan: Plan, image: string, healthTimeoutMs: number, log: (m: string) => void): Promise<HealthResult> {
  const st = plan.settings;
  const name = st.container.name;
  const prevName = `${name}-previous`;
  const change = plan.changes.find((c) => c.kind === 'container');
  if (!change) return checkHealth(s.docker, name, st.services);
  if (st.container.privileged) {
    const p = await probePrivileged(s.docker, image, name);
    if (!p.ok) {
      throw new GridforgeError(`this host refuses privileged containers (${p.error})`, {
        where: `${spec.file ?? 'site file'}: vobox.privileged`,
        hint: 'Replace `privileged: true` with a capability list, e.g. capabilities: [NET_ADMIN, SYS_ADMIN].',
      });
    }
  }
  if (change.action === 'start') {
    log(`starting ${name}`);
    await s.docker.call('POST', `/containers/${name}/start`, undefined, [304]);
    return finishHealth(s, st, healthTimeoutMs, log, null);
  }
  let hadPrevious = false;
  if (change.action === 'replace') {
    await s.docker.call('DELETE', `/containers/${prevName}?force=1`, undefined, [404]);
    log(`stopping ${name}, keeping it as ${prevName}`);
    await s.docker.call('POST', `/containers/${name}/stop?t=10`, undefined, [304]);
    await s.docker.call('POST', `/containers/${name}/rename?name=${prevName}`);
    hadPrevious = true;
  }
  // A stopped container holds no endpoint: its static IP/MAC are free for the new one.
  log(`creating ${name} (${st.container.ip}, ${st.container.mac}, nofile ${st.nofile.applied})`);
  try {
    const c = await s.docker.call('POST', `/containers/create?name=${encodeURIComponent(name)}`, containerCreateBody(st, image, s.api.apiVersion));
    await s.docker.call('POST', `/containers/${c.data.Id}/start`);
  } catch (err) {
    await rollback(s, st, hadPrevious, log);
    throw new GridforgeError(`cannot start ${name}: ${(err as Error).message}${hadPrevious ? `; previous container restored` : ''}`, { where: s.ssh.label, cause: err });
  }
  return finishHealth(s, st, healthTimeoutMs, log, hadPrevious);
}

async function finishHealth(s: Session, st: DeploySettings, timeoutMs: number, log: (m: string) => void, hadPrevious: boolean | null): Promise<HealthResult> {
  const name = st.container.name;
  log(`waiting until ${st.services.join(', ')} are RUNNING`);
  const h = await waitHealthy(s.docker, name, st.services, timeoutMs, log);
  if (h.healthy) {
    if (hadPrevious) await s.docker.call('DELETE', `/containers/${name}-previous?force=1`, undefined, [404]);
    log(`healthy: ${st.services.join(', ')} RUNNING`);
    return h;
  }
  // Show the log of the service that actually failed (FATAL, then EXITED/BACKOFF), not one still STARTING.
  const severity = (x: string) => ({ FATAL: 0, EXITED: 1, BACKOFF: 2 } as Record<string, number>)[h.services[x]] ?? 3;
  const svc = [...h.failing].sort((a, b) => severity(a) - severity(b))[0];
  const tail = svc ? await serviceLogTail(s.docker, name, svc) : '';
  let restored = '';
  if (hadPrevious !== null) await rollback(s, st, hadPrevious, log);
  if (hadPrevious) {
    // Wait for the restored container too, so the site is back in service when deploy returns.
    const services = await previousServices(s, name);
    const r = await waitHealthy(s.docker, name, services, timeoutMs, log);
    restored = r.healthy ? ' and is healthy again' : ` but is NOT healthy (${r.reason})`;
  }
  throw new GridforgeError(
    `VO-box ${name} on ${s.ssh.label} is not healthy: ${h.reason ?? 'unknown'}; ${hadPrevious ? `the previous container was restored${restored}` : hadPrevious === false ? 'the new container was removed' : 'left as is'}`,
    { where: s.ssh.label, hint: `Look at the service log below (or \`gridforge site logs <site.yaml> ${svc ?? ''}\`), fix it and deploy again.`, detail: tail },
  );
}

/** The services a (restored) container was started with (its GRIDFORGE_SERVICES). */
async function previousServices(s: Session, name: string): Promise<string[]> {
  const ct = await s.docker.inspectContainer(name);
  const env = (ct?.Config?.Env ?? []) as string[];
  const v = env.find((e) => e.startsWith('GRIDFORGE_SERVICES='));
  return v ? v.slice('GRIDFORGE_SERVICES='.length).split(',').filter(Boolean) : [];
}

async function rollback(s: Session, st: DeploySettings, hadPrevious: boolean, log: (m: string) => void): Promise<void> {
  const name = st.container.name;
  await s.docker.call('DELETE', `/containers/${name}?force=1`, undefined, [404]).catch(() => {});
  if (!hadPrevious) return;
  log(`restoring the previous container ${name}`);
  await s.docker.call('POST', `/containers/${name}-previous/rename?name=${name}`);
  await s.docker.call('POST', `/containers/${name}/start`, undefined, [304]).catch((err: DockerApiError) => log(`warning: previous container did not start: ${err.message}`));
}

/** Roll a site back to what it ran before (a DeployResult.previous). */
export async function restoreSite(spec: SiteSpec, previous: PreviousState, opts: Omit<DeployOptions, 'overrides'> = {}): Promise<DeployResult> {
  const copy = structuredClone(spec) as SiteSpec;
  if (previous.jalienVersion) copy.vobox.jalien = { version: previous.jalienVersion };
  else delete copy.vobox.jalien;
  // The image ID, not the tag: a tag may have moved on since (the ID is what actually ran).
  copy.vobox.image = previous.imageId || previous.image;
  return deploySite(copy, { ...opts, yes: true });
}

export interface SiteStatus {
  site: string;
  host: string;
  exists: boolean;
  running: boolean;
  image: string | null;
  imageId: string | null;
  jalienVersion: string | null;
  uptime: number | null;
  startedAt: string | null;
  ip: string | null;
  mac: string | null;
  services: Record<string, string>;
  healthy: boolean;
}

export async function siteStatus(spec: SiteSpec): Promise<SiteStatus> {
  const s = await openSession(spec);
  try {
    const name = spec.vobox.name;
    const ct = await s.docker.inspectContainer(name);
    const base = { site: spec.site, host: s.ssh.label };
    if (!ct) return { ...base, exists: false, running: false, image: null, imageId: null, jalienVersion: null, uptime: null, startedAt: null, ip: null, mac: null, services: {}, healthy: false };
    const h = await checkHealth(s.docker, name, spec.vobox.services);
    let jalienVersion: string | null = null;
    if (ct.State?.Running) {
      const r = await s.docker.exec(name, ['sh', '-c', 'command -v gridforge-ce-version >/dev/null && gridforge-ce-version'], 10_000).catch(() => null);
      if (r && r.code === 0 && r.stdout.trim()) jalienVersion = r.stdout.trim();
    }
    if (!jalienVersion) jalienVersion = previousOf(ct)?.jalienVersion ?? null;
    const ep = ct.NetworkSettings?.Networks?.[spec.vobox.network.name];
    const started = ct.State?.StartedAt ? Date.parse(ct.State.StartedAt) : NaN;
    return {
      ...base,
      exists: true,
      running: !!ct.State?.Running,
      image: ct.Config?.Image ?? null,
      imageId: ct.Image ?? null,
      jalienVersion,
      uptime: ct.State?.Running && Number.isFinite(started) ? Math.round((Date.now() - started) / 1000) : null,
      startedAt: ct.State?.StartedAt ?? null,
      ip: ep?.IPAddress || ep?.IPAMConfig?.IPv4Address || null,
      mac: (ep?.MacAddress || ct.Config?.MacAddress || null)?.toLowerCase() ?? null,
      services: h.services,
      healthy: h.healthy,
    };
  } finally {
    s.close();
  }
}

export async function siteLogs(spec: SiteSpec, service: string, bytes = 8000): Promise<string> {
  const s = await openSession(spec);
  try {
    if (!(await s.docker.inspectContainer(spec.vobox.name))) throw new GridforgeError(`VO-box ${spec.vobox.name} does not exist on ${s.ssh.label}`, { where: s.ssh.label, hint: 'Deploy it first: gridforge site deploy <site.yaml>.' });
    return await serviceLogTail(s.docker, spec.vobox.name, service, bytes);
  } finally {
    s.close();
  }
}

export interface DestroyResult {
  removed: string[];
  kept: string[];
}

/** Remove what deploy created: container(s), the network when unused, the shim, host files when no other VO-box uses them. Volume data is kept. */
export async function destroySite(spec: SiteSpec, opts: { onProgress?: (m: string) => void } = {}): Promise<DestroyResult> {
  const log = opts.onProgress ?? (() => {});
  const s = await openSession(spec);
  const removed: string[] = [];
  const kept: string[] = [];
  try {
    const name = spec.vobox.name;
    for (const n of [name, `${name}-previous`, `${name}-privprobe`]) {
      const r = await s.docker.call('DELETE', `/containers/${n}?force=1&v=0`, undefined, [404]);
      if (r.status !== 404) {
        removed.push(`container ${n}`);
        log(`removed container ${n}`);
      }
    }
    const net = await s.docker.inspectNetwork(spec.vobox.network.name);
    if (net) {
      if (Object.keys(net.Containers ?? {}).length === 0) {
        await s.docker.call('DELETE', `/networks/${encodeURIComponent(spec.vobox.network.name)}`, undefined, [404]);
        removed.push(`network ${spec.vobox.network.name}`);
      } else kept.push(`network ${spec.vobox.network.name} (other containers attached)`);
    }
    if (spec.vobox.network.shim) {
      const r = await s.ssh.exec(`ip link del ${spec.vobox.network.shim.name}`);
      if (r.code === 0) removed.push(`shim ${spec.vobox.network.shim.name}`);
    }
    const others = await s.docker.call('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: [`${LABEL_MANAGED}=gridforge`] }))}`);
    const st = deriveSettings(spec);
    if ((others.data as any[]).length === 0) {
      const files = [st.host.limitsFile.path, '/etc/sysctl.d/90-gridforge-nofile.conf', ...st.host.systemdDropIns.map((d) => d.path)];
      const r = await s.ssh.exec(`for f in ${files.join(' ')}; do [ -e "$f" ] && rm -f "$f" && echo "$f"; done; f=${st.host.cvmfsDefaultLocal.path}; head -1 $f 2>/dev/null | grep -q '^# written by gridforge' && rm -f $f && echo $f; true`);
      removed.push(...r.stdout.split('\n').filter(Boolean));
    } else kept.push('host limits/drop-in files (other gridforge VO-boxes on this host)');
    kept.push('/etc/docker/daemon.json keys (live-restore, default-ulimits, log options: shared host settings)');
    kept.push(`volume data ${spec.vobox.volumes.home}, ${spec.vobox.volumes.gridSecurity}`);
    return { removed, kept };
  } finally {
    s.close();
  }
}
