/**
 * Deploy over SSH: the plan (plan.ts), then each resource's apply in order (resources/index.ts), the
 * health gate, and the restore of the previous container when health fails; also status, logs and
 * destroy (the resources' destroy in reverse order). Every resource compares desired and actual
 * first, so a dropped connection is repaired by running deploy again.
 */
import { GridforgeError, UsageError } from '../base/errors.ts';
import { checkHealth, serviceLogTail, waitHealthy, type HealthResult } from './health.ts';
import { applyOverrides, computePlan, formatPlan, type Overrides, type Plan } from './plan.ts';
import { RESOURCES, type Change, type Desired } from './resources/index.ts';
import { envOf, previousName, rollbackContainer } from './resources/container.ts';
import { openSession, type Session } from './session.ts';
import { deriveSettings, type DeploySettings } from './settings.ts';
import type { SiteSpec } from './spec.ts';

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
  /**
   * Stops the deploy when it aborts (a rollout's deadline, Ctrl-C): the SSH session closes, so the
   * step under way fails and no later step starts; the deploy rejects with the signal's reason.
   * What was applied stays (a rollout then restores the previous version).
   */
  signal?: AbortSignal;
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

/** What a container ran (image, image ID, pinned JAliEn version), for restore and status. */
export function previousOf(ct: any | null): PreviousState | null {
  if (!ct) return null;
  const env = envOf(ct);
  return { image: ct.Config?.Image, imageId: ct.Image, jalienVersion: env.get('JALIEN_VERSION') ?? null };
}

export async function deploySite(spec: SiteSpec, opts: DeployOptions = {}): Promise<DeployResult> {
  const t0 = Date.now();
  const log = opts.onProgress ?? (() => {});
  const overrides: Overrides = { ...opts.overrides, recreateNetwork: opts.recreateNetwork };
  const eff = applyOverrides(spec, overrides);
  opts.signal?.throwIfAborted();
  const s = await openSession(eff);
  const stop = () => s.close();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    if (opts.signal?.aborted) stop();
    return await deployInSession(s, spec, eff, overrides, opts, log, t0);
  } catch (err) {
    // a step cut off by the closed session fails with a connection error: report why it stopped
    if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new GridforgeError(`deploy of ${spec.site} stopped`, { where: spec.file });
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    s.close();
  }
}

async function deployInSession(s: Session, spec: SiteSpec, eff: SiteSpec, overrides: Overrides, opts: DeployOptions, log: (m: string) => void, t0: number): Promise<DeployResult> {
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
  const previous = previousOf(plan.observed.container);
  if (!plan.changes.length) {
    return result(plan, false, health0, plan.observed.container, previous, t0, s);
  }
  opts.signal?.throwIfAborted();
  await applyAll(s, plan, log);
  opts.signal?.throwIfAborted();
  const health = await healthGate(s, plan, opts.healthTimeoutMs ?? 120_000, log);
  const ct = await s.docker.inspectContainer(plan.settings.container.name);
  return result(plan, true, health, ct, previous, t0, s);
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

/**
 * The health gate after the container step: nothing to wait for when the container did not change;
 * a started container is left as is when unhealthy; a new one is removed and, when it replaced one,
 * the previous container is restored.
 */
function healthGate(s: Session, plan: Plan, timeoutMs: number, log: (m: string) => void): Promise<HealthResult> {
  const st = plan.settings;
  const change = plan.changes.find((c) => c.kind === 'container');
  if (!change) return checkHealth(s.docker, st.container.name, st.services);
  const hadPrevious = change.action === 'start' ? null : change.action === 'replace';
  return finishHealth(s, st, timeoutMs, log, hadPrevious);
}

/** Apply every resource in order (each gets its own changes, possibly none); the container last. */
async function applyAll(s: Session, plan: Plan, log: (m: string) => void): Promise<void> {
  for (const r of RESOURCES) {
    const changes = plan.changes.filter((c) => r.kinds.includes(c.kind));
    await r.apply(s, plan.desired, plan.observed, changes, log);
  }
}

async function finishHealth(s: Session, st: DeploySettings, timeoutMs: number, log: (m: string) => void, hadPrevious: boolean | null): Promise<HealthResult> {
  const name = st.container.name;
  log(`waiting until ${st.services.join(', ')} are RUNNING`);
  const h = await waitHealthy(s.docker, name, st.services, timeoutMs, log);
  if (h.healthy) {
    if (hadPrevious) await s.docker.call('DELETE', `/containers/${previousName(name)}?force=1`, undefined, [404]);
    log(`healthy: ${st.services.join(', ')} RUNNING`);
    return h;
  }
  // Show the log of the service that actually failed (FATAL, then EXITED/BACKOFF), not one still STARTING.
  const severity = (x: string) => ({ FATAL: 0, EXITED: 1, BACKOFF: 2 } as Record<string, number>)[h.services[x]] ?? 3;
  const svc = [...h.failing].sort((a, b) => severity(a) - severity(b))[0];
  const tail = svc ? await serviceLogTail(s.docker, name, svc) : '';
  let restored = '';
  if (hadPrevious !== null) await rollbackContainer(s, st, hadPrevious, log);
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

/** Roll a site back to what it ran before (a DeployResult.previous). */
export async function restoreSite(spec: SiteSpec, previous: PreviousState, opts: Omit<DeployOptions, 'overrides'> = {}): Promise<DeployResult> {
  const copy = structuredClone(spec) as SiteSpec;
  if (previous.jalienVersion) copy.vobox.jalien = { version: previous.jalienVersion };
  else delete copy.vobox.jalien;
  // The image ID, not the tag: a tag may have moved on since (the ID is what actually ran).
  copy.vobox.image = previous.imageId || previous.image;
  return deploySite(copy, { ...opts, yes: true });
}

export interface DestroyResult {
  removed: string[];
  kept: string[];
}

/** Remove what deploy created, resources in reverse order: container(s), the network when unused, the shim, host files when no other VO-box uses them. Volume data is kept. */
export async function destroySite(spec: SiteSpec, opts: { onProgress?: (m: string) => void } = {}): Promise<DestroyResult> {
  const log = opts.onProgress ?? (() => {});
  const s = await openSession(spec);
  const desired: Desired = { settings: deriveSettings(spec), file: spec.file ?? 'site file', recreateNetwork: false };
  const out: DestroyResult = { removed: [], kept: [] };
  try {
    for (const r of [...RESOURCES].reverse()) {
      const d = await r.destroy(s, desired, log);
      out.removed.push(...d.removed);
      out.kept.push(...d.kept);
    }
    return out;
  } finally {
    s.close();
  }
}
