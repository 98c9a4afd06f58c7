/**
 * The executor: runs the waves of a rollout record with bounded concurrency, one site at a time
 * through its state machine (check -> deploy -> health gate -> done | roll back), saving the
 * record after every state change. Used by start, resume and (for rollbacks) abort.
 */
import { GridforgeError } from '../../base/errors.ts';
import { SiteOperationError, type SiteDescriptor, type SiteDriver, type SiteObservation } from './driver.ts';
import { saveRecord } from './record-store.ts';
import { formatMs, sleep, withTimeout } from './timeout.ts';
import {
  describeTarget,
  FAILURE_STATES,
  FINISHED_STATES,
  IN_FLIGHT_STATES,
  type Previous,
  type RolloutRecord,
  type SiteRecord,
  type SiteState,
  type Target,
} from './types.ts';

export interface ExecuteContext {
  driver: SiteDriver;
  /** Where the record is saved after every change. */
  recordPath: string;
  /** Descriptors of the record's sites, by site name. */
  sites: Map<string, SiteDescriptor>;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
  /** Soft stop (first Ctrl-C): no new site is started; running ones finish. */
  stop?: AbortSignal;
  /** Called after every save, with the record (tests and live tables). */
  onChange?: (record: RolloutRecord, site?: SiteRecord) => void;
  /** Interval between health gate polls, ms. */
  pollMs?: number;
}

const now = () => new Date().toISOString();

/** Failures recorded so far (unreachable sites count: they did not get the new version). */
export function failureCount(record: RolloutRecord): number {
  return record.sites.filter((s) => FAILURE_STATES.has(s.state)).length;
}

/** A simple counting semaphore per key (sites sharing one Docker host). */
class KeyedSemaphore {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();
  constructor(private readonly limit: number) {}
  async acquire(key: string): Promise<() => void> {
    const n = this.active.get(key) ?? 0;
    if (n >= this.limit) {
      await new Promise<void>((r) => {
        const q = this.waiting.get(key) ?? [];
        q.push(r);
        this.waiting.set(key, q);
      });
    }
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    return () => {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
      const next = this.waiting.get(key)?.shift();
      if (next) next();
    };
  }
}

export class RolloutExecutor {
  private readonly record: RolloutRecord;
  private readonly ctx: ExecuteContext;
  private stopReason: string | null = null;
  private readonly hostSlots: KeyedSemaphore;

  constructor(record: RolloutRecord, ctx: ExecuteContext) {
    this.record = record;
    this.ctx = ctx;
    this.hostSlots = new KeyedSemaphore(record.options.perHost);
  }

  private log(line: string): void {
    this.ctx.onProgress?.(line);
  }

  private save(site?: SiteRecord): void {
    saveRecord(this.ctx.recordPath, this.record);
    this.ctx.onChange?.(this.record, site);
  }

  private setState(site: SiteRecord, state: SiteState, note?: string): void {
    site.state = state;
    site.events.push(note ? { at: now(), state, note } : { at: now(), state });
    if (FINISHED_STATES.has(state)) site.finishedAt = now();
    this.save(site);
  }

  private checkStop(): boolean {
    if (this.stopReason) return true;
    if (this.ctx.stop?.aborted) {
      this.stopReason = 'interrupted';
      return true;
    }
    const failures = failureCount(this.record);
    if (failures > this.record.options.maxFailures) {
      this.stopReason = `${failures} site(s) failed, more than --max-failures ${this.record.options.maxFailures}`;
      return true;
    }
    return false;
  }

  /** Run every wave that still has work; returns the record with its final status. */
  async run(): Promise<RolloutRecord> {
    const rec = this.record;
    rec.status = 'running';
    rec.stopReason = null;
    this.save();
    const waves = rec.waves;
    for (const wave of waves) {
      const todo = wave.sites.map((name) => this.site(name)).filter((s) => !FINISHED_STATES.has(s.state) && s.state !== 'skipped');
      if (todo.length === 0) continue;
      if (this.checkStop()) break;
      wave.startedAt ??= now();
      this.log(`wave ${wave.index + 1}/${waves.length} (${wave.kind}): ${todo.map((s) => s.site).join(', ')}`);
      this.save();
      let next = 0;
      const worker = async () => {
        while (next < todo.length) {
          if (this.checkStop()) return;
          const site = todo[next++];
          const release = await this.hostSlots.acquire(site.host);
          try {
            if (this.checkStop()) return;
            await this.runSite(site);
          } finally {
            release();
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(rec.options.concurrency, todo.length) }, worker));
      if (todo.every((s) => FINISHED_STATES.has(s.state))) wave.finishedAt = now();
      this.save();
    }
    this.checkStop();
    const interrupted = this.stopReason === 'interrupted';
    if (this.stopReason && !interrupted) {
      for (const s of rec.sites) if (s.state === 'pending') this.setState(s, 'skipped', this.stopReason);
    }
    const failed = failureCount(rec) > 0;
    rec.status = interrupted ? 'interrupted' : this.stopReason ? 'stopped' : failed ? 'failed' : 'completed';
    rec.stopReason = this.stopReason;
    this.save();
    return rec;
  }

  private site(name: string): SiteRecord {
    const s = this.record.sites.find((x) => x.site === name);
    if (!s) throw new GridforgeError(`rollout record lists site ${name} in a wave but not in its sites`, { where: this.ctx.recordPath });
    return s;
  }

  private desc(site: SiteRecord): SiteDescriptor {
    const d = this.ctx.sites.get(site.site);
    if (!d) throw new GridforgeError(`no site file loaded for ${site.site}`, { where: site.file });
    return d;
  }

  private observe(desc: SiteDescriptor, what: string): Promise<SiteObservation> {
    const ms = this.record.options.statusTimeoutMs;
    return withTimeout(`${what} (${desc.site} at ${desc.host})`, ms, (signal) => this.ctx.driver.observe(desc, { signal, timeoutMs: ms }));
  }

  private recordObserved(site: SiteRecord, obs: SiteObservation): void {
    site.observed = { image: obs.image, jalienVersion: obs.jalienVersion, healthy: obs.healthy, services: obs.services };
  }

  /** One site through its state machine. Never throws for site failures: they are recorded. */
  async runSite(site: SiteRecord): Promise<void> {
    const rec = this.record;
    const desc = this.desc(site);
    const target = rec.target;
    const resumedFrom = site.state;
    // A site left `checking` by a killed run was never deployed: start it afresh.
    const wasInFlight = IN_FLIGHT_STATES.has(resumedFrom) && resumedFrom !== 'checking';
    site.startedAt ??= now();
    site.error = null;
    this.setState(site, 'checking', wasInFlight ? `resuming a site left ${resumedFrom} by an interrupted run` : undefined);

    let obs: SiteObservation;
    try {
      obs = await this.observe(desc, 'reading the current state');
    } catch (err) {
      site.error = message(err);
      this.log(`  ${site.site}: unreachable: ${site.error}`);
      this.setState(site, 'unreachable', site.error);
      return;
    }
    this.recordObserved(site, obs);
    if (!site.previous) site.previous = { image: obs.image, jalienVersion: obs.jalienVersion };
    const onTarget = this.ctx.driver.onTarget(desc, obs, target);

    if (onTarget && obs.healthy) {
      if (wasInFlight && resumedFrom !== 'rolling-back') {
        this.log(`  ${site.site}: already on ${describeTarget(target)} and healthy (finished by the interrupted run)`);
        this.setState(site, 'done', 'the interrupted run had applied it; not deployed again');
      } else if (resumedFrom === 'rolling-back') {
        await this.rollback(site, desc, obs, site.error ?? 'interrupted while rolling back', undefined);
      } else {
        this.log(`  ${site.site}: already on ${describeTarget(target)} and healthy, nothing to do`);
        this.setState(site, 'unchanged');
      }
      return;
    }
    if (resumedFrom === 'rolling-back') {
      await this.rollback(site, desc, obs, 'interrupted while rolling back', undefined);
      return;
    }

    const t0 = Date.now();
    let failure: { reason: string; logTail?: string } | null = null;
    if (wasInFlight && onTarget) {
      this.log(`  ${site.site}: the interrupted run had deployed it; waiting for its health gate`);
    } else {
      site.deploys++;
      this.setState(site, 'deploying', describeTarget(target));
      this.log(`  ${site.site}: deploying ${describeTarget(target)} (was ${fmtPrev(site.previous)})`);
      const ms = rec.options.siteTimeoutMs;
      try {
        await withTimeout(`deploying ${site.site}`, ms, (signal) =>
          this.ctx.driver.deploy(desc, target, { signal, timeoutMs: ms, current: site.previous, onProgress: (l) => this.log(`  ${site.site}: ${l}`) }),
        );
      } catch (err) {
        failure = { reason: `deploy failed: ${message(err)}`, logTail: err instanceof SiteOperationError ? err.logTail : undefined };
      }
    }

    if (!failure) {
      this.setState(site, 'verifying');
      const gate = await this.healthGate(site, desc, target);
      if (gate.ok) {
        site.deployMs = Date.now() - t0;
        this.log(`  ${site.site}: healthy on ${describeTarget(target)} (${formatMs(site.deployMs)})`);
        this.setState(site, 'done');
        return;
      }
      failure = { reason: gate.reason, logTail: gate.logTail };
    }
    site.deployMs = Date.now() - t0;
    let after: SiteObservation | null = null;
    try {
      after = await this.observe(desc, 'reading the state after the failed deploy');
      this.recordObserved(site, after);
    } catch {
      after = null;
    }
    await this.rollback(site, desc, after, failure.reason, failure.logTail);
  }

  /**
   * Health gate: every enabled service RUNNING and the site on the target (image and, for a
   * JAliEn change, the version the CE reports), within healthTimeoutMs.
   */
  private async healthGate(site: SiteRecord, desc: SiteDescriptor, target: Target): Promise<{ ok: true } | { ok: false; reason: string; logTail?: string }> {
    const deadline = Date.now() + this.record.options.healthTimeoutMs;
    let last: SiteObservation | null = null;
    let lastError = '';
    for (;;) {
      try {
        last = await this.observe(desc, 'health gate');
        this.recordObserved(site, last);
        if (last.healthy && this.ctx.driver.onTarget(desc, last, target) && this.keepsImage(site, last, target)) return { ok: true };
      } catch (err) {
        lastError = message(err);
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(this.ctx.pollMs ?? 1000, Math.max(0, deadline - Date.now())));
    }
    const ms = formatMs(this.record.options.healthTimeoutMs);
    if (!last) return { ok: false, reason: `health gate: site not readable within ${ms}: ${lastError}` };
    const bad = Object.entries(last.services).filter(([, st]) => st !== 'RUNNING');
    const missing = desc.services.filter((s) => !(s in last!.services));
    const parts: string[] = [];
    if (bad.length) parts.push(`services not RUNNING: ${bad.map(([n, st]) => `${n}=${st}`).join(', ')}`);
    if (missing.length) parts.push(`services missing: ${missing.join(', ')}`);
    if (target.jalienVersion && last.jalienVersion !== target.jalienVersion) parts.push(`CE reports JAliEn ${last.jalienVersion ?? '(none)'}, expected ${target.jalienVersion}`);
    if (target.image && !this.ctx.driver.onTarget(desc, { ...last, jalienVersion: target.jalienVersion ?? last.jalienVersion }, target)) parts.push(`runs image ${last.image ?? '(none)'}, expected ${target.image}`);
    if (!this.keepsImage(site, last, target)) parts.push(`runs image ${last.image ?? '(none)'}, but a JAliEn rollout must keep ${site.previous?.image}`);
    if (!parts.length) parts.push(last.healthy ? 'not on the target version' : 'not healthy');
    let logTail: string | undefined;
    const failing = bad[0]?.[0] ?? (target.jalienVersion ? 'ce' : undefined);
    if (failing && this.ctx.driver.logTail) {
      try {
        logTail = await withTimeout(`log tail of ${failing}`, this.record.options.statusTimeoutMs, (signal) =>
          this.ctx.driver.logTail!(desc, failing, { signal, timeoutMs: this.record.options.statusTimeoutMs }),
        );
      } catch {
        logTail = undefined;
      }
    }
    return { ok: false, reason: `health gate failed within ${ms}: ${parts.join('; ')}`, logTail };
  }

  /** A rollout that does not change the image must leave the site on the image it ran. */
  private keepsImage(site: SiteRecord, obs: SiteObservation, target: Target): boolean {
    if (target.image || !site.previous?.image) return true;
    return obs.image === site.previous.image;
  }

  /** Put a failed site back on what it ran before (unless the deploy engine already did). */
  private async rollback(site: SiteRecord, desc: SiteDescriptor, obs: SiteObservation | null, reason: string, logTail: string | undefined): Promise<void> {
    site.error = reason;
    if (logTail) site.logTail = tail(logTail, 40);
    this.log(`  ${site.site}: FAILED: ${reason}`);
    this.setState(site, 'rolling-back', reason);
    const prev = site.previous!;
    if (obs && onPrevious(obs, prev)) {
      // The deploy engine already put the previous container back: wait for it to be healthy.
      const back = obs.healthy ? obs : await this.waitHealthy(site, desc);
      if (back && onPrevious(back, prev) && back.healthy) {
        this.log(`  ${site.site}: back on ${fmtPrev(prev)} (the deploy engine restored it)`);
        this.setState(site, 'rolled-back', `back on ${fmtPrev(prev)}`);
        return;
      }
    }
    const ms = this.record.options.siteTimeoutMs;
    site.restores++;
    this.save(site);
    this.log(`  ${site.site}: rolling back to ${fmtPrev(prev)}`);
    try {
      await withTimeout(`rolling back ${site.site}`, ms, (signal) => this.ctx.driver.restore(desc, prev, { signal, timeoutMs: ms, changed: this.record.target }));
      const after = await this.observe(desc, 'checking the rollback');
      this.recordObserved(site, after);
      if (!onPrevious(after, prev)) throw new Error(`after the restore the site runs ${after.image ?? '(nothing)'} / JAliEn ${after.jalienVersion ?? '(none)'}`);
      this.setState(site, 'rolled-back', `back on ${fmtPrev(prev)}${after.healthy ? '' : ' (not healthy)'}`);
      this.log(`  ${site.site}: rolled back to ${fmtPrev(prev)}`);
    } catch (err) {
      site.error = `${reason}; rollback failed: ${message(err)}`;
      this.log(`  ${site.site}: ROLLBACK FAILED: ${message(err)}`);
      this.setState(site, 'rollback-failed', message(err));
    }
  }

  /** Poll until the site is healthy (or the health timeout passes); the last observation. */
  private async waitHealthy(site: SiteRecord, desc: SiteDescriptor): Promise<SiteObservation | null> {
    const deadline = Date.now() + this.record.options.healthTimeoutMs;
    let last: SiteObservation | null = null;
    for (;;) {
      try {
        last = await this.observe(desc, 'waiting for the restored VO-box');
        this.recordObserved(site, last);
        if (last.healthy) return last;
      } catch {
        /* keep polling until the deadline */
      }
      if (Date.now() >= deadline) return last;
      await sleep(Math.min(this.ctx.pollMs ?? 1000, Math.max(0, deadline - Date.now())));
    }
  }

  /** Roll back sites that this rollout changed (abort --rollback). */
  async revertChanged(): Promise<void> {
    const changed = this.record.sites.filter((s) => s.state === 'done' || IN_FLIGHT_STATES.has(s.state));
    let next = 0;
    const worker = async () => {
      while (next < changed.length) {
        const site = changed[next++];
        const release = await this.hostSlots.acquire(site.host);
        try {
          await this.revertSite(site);
        } finally {
          release();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.record.options.concurrency, changed.length) }, worker));
  }

  private async revertSite(site: SiteRecord): Promise<void> {
    const desc = this.desc(site);
    const prev = site.previous;
    if (!prev) {
      this.setState(site, 'reverted', 'never changed (no previous state recorded)');
      return;
    }
    const ms = this.record.options.siteTimeoutMs;
    try {
      const obs = await this.observe(desc, 'reading the current state');
      if (onPrevious(obs, prev) && obs.healthy) {
        this.setState(site, 'reverted', `already on ${fmtPrev(prev)}`);
        return;
      }
      this.log(`  ${site.site}: rolling back to ${fmtPrev(prev)}`);
      site.restores++;
      await withTimeout(`rolling back ${site.site}`, ms, (signal) => this.ctx.driver.restore(desc, prev, { signal, timeoutMs: ms, changed: this.record.target }));
      const after = await this.observe(desc, 'checking the rollback');
      this.recordObserved(site, after);
      if (!onPrevious(after, prev)) throw new Error(`after the restore the site runs ${after.image ?? '(nothing)'}`);
      this.setState(site, 'reverted', `back on ${fmtPrev(prev)} on request`);
    } catch (err) {
      site.error = `abort: rollback failed: ${message(err)}`;
      this.log(`  ${site.site}: ROLLBACK FAILED: ${message(err)}`);
      this.setState(site, 'rollback-failed', site.error);
    }
  }
}

function onPrevious(obs: SiteObservation, prev: Previous): boolean {
  if (obs.image !== prev.image) return false;
  return prev.jalienVersion === null || obs.jalienVersion === prev.jalienVersion;
}

export function fmtPrev(prev: Previous | null): string {
  if (!prev) return '(unknown)';
  if (!prev.image) return '(no VO-box)';
  return prev.jalienVersion ? `${prev.image} / JAliEn ${prev.jalienVersion}` : prev.image;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
