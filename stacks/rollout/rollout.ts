/**
 * Rollout lifecycle: start (plan waves, write the record, take the site locks, execute), resume
 * (continue a record after a crash / Ctrl-C / lost connection without redeploying finished sites),
 * abort (stop a rollout and, on request, roll back the sites it changed), dry run.
 */
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import type { SiteDescriptor, SiteDriver } from './driver.ts';
import { RolloutExecutor, failureCount } from './execute.ts';
import { loadInventory } from './inventory.ts';
import { planWaves } from './plan.ts';
import { DEFAULT_RECORD_DIR, loadRecord, newRolloutId, recordPath, saveRecord } from './record-store.ts';
import { SiteLocks } from './site-lock.ts';
import { isProcessAlive as isAlive } from '../../base/pid-lock.ts';
import { mapBounded, withTimeout } from './timeout.ts';
import { FINISHED_STATES, type RolloutOptions, type RolloutRecord, type SiteRecord, type Target } from './types.ts';

export const DEFAULT_OPTIONS: RolloutOptions = {
  canary: 1,
  concurrency: 4,
  maxFailures: 0,
  siteTimeoutMs: 600_000,
  statusTimeoutMs: 30_000,
  healthTimeoutMs: 120_000,
  perHost: 1,
  only: [],
  exclude: [],
};

export interface RunHooks {
  onProgress?: (line: string) => void;
  /** Soft stop: no new site starts; running sites finish; status becomes `interrupted`. */
  stop?: AbortSignal;
  onChange?: (record: RolloutRecord) => void;
  pollMs?: number;
}

export interface StartRequest {
  inventory: string;
  target: Target;
  options?: Partial<RolloutOptions>;
  driver: SiteDriver;
  /** Directory of records and locks (default .gridforge/rollouts). */
  recordDir?: string;
  /** Explicit record file (its directory then holds the locks). */
  recordFile?: string;
  id?: string;
}

export interface RolloutResult {
  record: RolloutRecord;
  path: string;
}

function checkTarget(target: Target): void {
  if (!target.image && !target.jalienVersion) {
    throw new UsageError('nothing to roll out', { hint: 'give --image <ref or archive> or --jalien <version>' });
  }
  if (target.jalienVersion && !/^[1-2]\..*-[0-9]+$/.test(target.jalienVersion)) {
    throw new UsageError(`not a JAliEn version: ${target.jalienVersion}`, { where: '--jalien', hint: 'JAliEn versions look like 2.1.3-1' });
  }
}

function newSiteRecord(d: SiteDescriptor & { canary: boolean }, wave: number, canary: boolean): SiteRecord {
  return {
    site: d.site,
    file: d.file,
    host: d.host,
    canary,
    wave,
    state: 'pending',
    previous: null,
    observed: null,
    deploys: 0,
    restores: 0,
    startedAt: null,
    finishedAt: null,
    deployMs: null,
    error: null,
    logTail: null,
    events: [],
  };
}

/** Build the record of a new rollout (nothing written, nothing changed). */
export async function planRollout(req: StartRequest): Promise<{ record: RolloutRecord; sites: Map<string, SiteDescriptor> }> {
  checkTarget(req.target);
  const options: RolloutOptions = { ...DEFAULT_OPTIONS, ...req.options };
  const inv = await loadInventory(req.inventory, req.driver, { only: options.only, exclude: options.exclude });
  const waves = planWaves(inv, { canary: Math.min(options.canary, inv.length), concurrency: options.concurrency });
  const created = new Date().toISOString();
  const record: RolloutRecord = {
    version: 1,
    id: req.id ?? newRolloutId(),
    createdAt: created,
    updatedAt: created,
    inventory: resolve(req.inventory),
    target: req.target,
    options,
    status: 'planned',
    stopReason: null,
    runner: null,
    runs: [],
    waves: waves.map((w) => ({ index: w.index, kind: w.kind, sites: w.sites.map((s) => s.site), startedAt: null, finishedAt: null })),
    sites: waves.flatMap((w) => w.sites.map((s) => newSiteRecord(s, w.index, w.kind === 'canary'))),
  };
  return { record, sites: new Map(inv.map((s) => [s.site, s])) };
}

function locate(req: { recordDir?: string; recordFile?: string }, id: string): { path: string; dir: string } {
  if (req.recordFile) {
    const path = resolve(req.recordFile);
    return { path, dir: dirname(path) };
  }
  const dir = resolve(req.recordDir ?? DEFAULT_RECORD_DIR);
  return { path: resolve(dir, `${id}.json`), dir };
}

async function execute(record: RolloutRecord, path: string, dir: string, sites: Map<string, SiteDescriptor>, driver: SiteDriver, hooks: RunHooks, kind: 'start' | 'resume'): Promise<RolloutRecord> {
  const locks = new SiteLocks(dir, record.id);
  locks.acquire(record.sites.filter((s) => !FINISHED_STATES.has(s.state)).map((s) => s.site));
  const started = new Date().toISOString();
  record.runner = { pid: process.pid, hostname: hostname(), startedAt: started };
  record.runs.push({ pid: process.pid, startedAt: started, endedAt: null, kind });
  try {
    const exec = new RolloutExecutor(record, {
      driver,
      recordPath: path,
      sites,
      onProgress: hooks.onProgress,
      stop: hooks.stop,
      onChange: hooks.onChange,
      pollMs: hooks.pollMs,
    });
    return await exec.run();
  } finally {
    record.runner = null;
    record.runs[record.runs.length - 1].endedAt = new Date().toISOString();
    saveRecord(path, record);
    locks.release();
  }
}

/** Start a rollout: plan, write the record, lock the sites, run the waves. */
export async function startRollout(req: StartRequest, hooks: RunHooks = {}): Promise<RolloutResult> {
  const { record, sites } = await planRollout(req);
  const { path, dir } = locate(req, record.id);
  hooks.onProgress?.(`rollout ${record.id}: ${record.sites.length} site(s) in ${record.waves.length} wave(s); record ${path}`);
  const final = await execute(record, path, dir, sites, req.driver, hooks, 'start');
  return { record: final, path };
}

export interface ResumeRequest {
  idOrPath: string;
  driver: SiteDriver;
  recordDir?: string;
  /** Raise the failure budget of a rollout that stopped on failures. */
  maxFailures?: number;
}

function refuseIfRunning(record: RolloutRecord, path: string): void {
  const r = record.runner;
  if (r && r.hostname === hostname() && isAlive(r.pid) && r.pid !== process.pid) {
    throw new GridforgeError(`rollout ${record.id} is still running (pid ${r.pid})`, { where: path, hint: 'wait for it, or stop it with `gridforge rollout abort <id>`' });
  }
}

async function describeAll(record: RolloutRecord, driver: SiteDriver): Promise<Map<string, SiteDescriptor>> {
  const map = new Map<string, SiteDescriptor>();
  for (const s of record.sites) {
    const d = await driver.describe(s.file);
    if (d.site !== s.site) {
      throw new UsageError(`site file now names site "${d.site}", the rollout record has "${s.site}"`, { where: s.file, hint: 'restore the site name, or start a new rollout' });
    }
    map.set(s.site, d);
  }
  return map;
}

/** Continue a rollout from its record: finished sites are never deployed again. */
export async function resumeRollout(req: ResumeRequest, hooks: RunHooks = {}): Promise<RolloutResult> {
  const path = recordPath(req.idOrPath, req.recordDir);
  const record = loadRecord(path);
  refuseIfRunning(record, path);
  if (record.status === 'completed' || record.status === 'aborted') {
    throw new UsageError(`rollout ${record.id} is ${record.status}; nothing to resume`, { where: path, hint: 'start a new rollout to change these sites again' });
  }
  if (req.maxFailures !== undefined) record.options.maxFailures = req.maxFailures;
  const failures = failureCount(record);
  if (failures > record.options.maxFailures) {
    throw new UsageError(`rollout ${record.id} stopped after ${failures} failed site(s) (--max-failures ${record.options.maxFailures})`, {
      where: path,
      hint: `resume with --max-failures ${failures} or more to continue over the remaining sites`,
    });
  }
  if (record.sites.every((s) => FINISHED_STATES.has(s.state))) {
    throw new UsageError(`rollout ${record.id} has no site left to deploy (${record.status}: ${failures} failed)`, {
      where: path,
      hint: 'to retry failed or unreachable sites, start a new rollout over them (--only <site>)',
    });
  }
  for (const s of record.sites) {
    if (s.state === 'skipped') {
      s.state = 'pending';
      s.events.push({ at: new Date().toISOString(), state: 'pending', note: 'resumed' });
    }
  }
  const sites = await describeAll(record, req.driver);
  const left = record.sites.filter((s) => !FINISHED_STATES.has(s.state)).length;
  hooks.onProgress?.(`rollout ${record.id}: resuming, ${left} of ${record.sites.length} site(s) left`);
  const final = await execute(record, path, dirname(path), sites, req.driver, hooks, 'resume');
  return { record: final, path };
}

export interface AbortRequest {
  idOrPath: string;
  driver: SiteDriver;
  recordDir?: string;
  /** Roll back every site this rollout changed. */
  rollback: boolean;
  /** How long to wait for a live runner to stop after SIGINT, ms. */
  waitMs?: number;
}

/** Stop a rollout (signals a live runner) and, on request, roll back the sites it changed. */
export async function abortRollout(req: AbortRequest, hooks: RunHooks = {}): Promise<RolloutResult> {
  const path = recordPath(req.idOrPath, req.recordDir);
  let record = loadRecord(path);
  const r = record.runner;
  if (r && r.hostname === hostname() && isAlive(r.pid) && r.pid !== process.pid) {
    hooks.onProgress?.(`rollout ${record.id}: asking runner pid ${r.pid} to stop (running sites finish first)`);
    process.kill(r.pid, 'SIGINT');
    const deadline = Date.now() + (req.waitMs ?? record.options.siteTimeoutMs + 60_000);
    while (isAlive(r.pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 250));
    if (isAlive(r.pid)) throw new GridforgeError(`runner pid ${r.pid} did not stop`, { where: path, hint: 'kill it, then run abort again' });
    record = loadRecord(path);
  }
  const dir = dirname(path);
  const locks = new SiteLocks(dir, record.id);
  locks.acquire(record.sites.map((s) => s.site));
  const started = new Date().toISOString();
  record.runner = { pid: process.pid, hostname: hostname(), startedAt: started };
  record.runs.push({ pid: process.pid, startedAt: started, endedAt: null, kind: 'abort' });
  try {
    for (const s of record.sites) {
      if (s.state === 'pending') {
        s.state = 'skipped';
        s.events.push({ at: started, state: 'skipped', note: 'rollout aborted' });
      }
    }
    if (req.rollback) {
      const sites = await describeAll(record, req.driver);
      const exec = new RolloutExecutor(record, { driver: req.driver, recordPath: path, sites, onProgress: hooks.onProgress, onChange: hooks.onChange, pollMs: hooks.pollMs });
      await exec.revertChanged();
    }
    record.status = 'aborted';
    record.stopReason = req.rollback ? 'aborted on request; changed sites rolled back' : 'aborted on request';
  } finally {
    record.runner = null;
    record.runs[record.runs.length - 1].endedAt = new Date().toISOString();
    saveRecord(path, record);
    locks.release();
  }
  return { record, path };
}

export interface DryRunSite {
  site: string;
  host: string;
  wave: number;
  kind: 'canary' | 'wave';
  current: { image: string | null; jalienVersion: string | null; healthy: boolean } | null;
  error: string | null;
  change: boolean;
}

/** What a rollout would do: waves, and each site's current version (read in parallel). Changes nothing. */
export async function dryRunRollout(req: StartRequest): Promise<{ record: RolloutRecord; sites: DryRunSite[] }> {
  const { record, sites } = await planRollout(req);
  const ms = record.options.statusTimeoutMs;
  const rows = await mapBounded(record.sites, Math.max(record.options.concurrency, 8), async (s): Promise<DryRunSite> => {
    const desc = sites.get(s.site)!;
    const kind = record.waves[s.wave].kind;
    try {
      const obs = await withTimeout(`reading ${s.site}`, ms, (signal) => req.driver.observe(desc, { signal, timeoutMs: ms }));
      const change = !(req.driver.onTarget(desc, obs, record.target) && obs.healthy);
      return { site: s.site, host: s.host, wave: s.wave, kind, current: { image: obs.image, jalienVersion: obs.jalienVersion, healthy: obs.healthy }, error: null, change };
    } catch (err) {
      return { site: s.site, host: s.host, wave: s.wave, kind, current: null, error: err instanceof Error ? err.message : String(err), change: true };
    }
  });
  return { record, sites: rows };
}
