/**
 * The rollout's data model: what is rolled out (target), the per-site state machine and the
 * rollout record that is persisted after every site state change.
 */
import { z } from 'zod';

/** What a rollout moves sites to: a new VO-box image, a new JAliEn version, or both. */
export const targetSchema = z.object({
  image: z.string().min(1).optional(),
  jalienVersion: z.string().min(1).optional(),
});
export type Target = z.infer<typeof targetSchema>;

/** What a site ran before the rollout touched it (what a rollback returns it to). */
export const previousSchema = z.object({
  image: z.string().nullable(),
  jalienVersion: z.string().nullable(),
});
export type Previous = z.infer<typeof previousSchema>;

/**
 * Per-site states.
 *  pending      not started yet
 *  checking     reading the site's current state (what it runs now)
 *  deploying    the new version is being applied (recorded BEFORE the deploy starts)
 *  verifying    deployed; waiting for the health gate
 *  rolling-back health gate failed; restoring the previous version
 *  done         on the new version and healthy                      (success)
 *  unchanged    was already on the new version and healthy           (success, nothing deployed)
 *  rolled-back  failed, and back on what it ran before              (failure)
 *  rollback-failed failed, and the restore failed too               (failure)
 *  unreachable  the site could not be reached (timeout or refused); nothing changed (failure)
 *  skipped      not attempted: the rollout stopped before its wave (neither)
 *  reverted     rolled back on request by `rollout abort --rollback`
 */
export const siteStates = [
  'pending',
  'checking',
  'deploying',
  'verifying',
  'rolling-back',
  'done',
  'unchanged',
  'rolled-back',
  'rollback-failed',
  'unreachable',
  'skipped',
  'reverted',
] as const;
export type SiteState = (typeof siteStates)[number];

export const SUCCESS_STATES: ReadonlySet<SiteState> = new Set(['done', 'unchanged']);
export const FAILURE_STATES: ReadonlySet<SiteState> = new Set(['rolled-back', 'rollback-failed', 'unreachable']);
/** States in which the site needs no more work from this rollout. */
export const FINISHED_STATES: ReadonlySet<SiteState> = new Set([
  'done',
  'unchanged',
  'rolled-back',
  'rollback-failed',
  'unreachable',
  'reverted',
]);
/** States a crashed runner can leave behind: the site may be half-way. */
export const IN_FLIGHT_STATES: ReadonlySet<SiteState> = new Set(['checking', 'deploying', 'verifying', 'rolling-back']);

export const siteEventSchema = z.object({
  at: z.string(),
  state: z.enum(siteStates),
  note: z.string().optional(),
});
export type SiteEvent = z.infer<typeof siteEventSchema>;

export const siteRecordSchema = z.object({
  site: z.string(),
  file: z.string(),
  host: z.string(),
  canary: z.boolean(),
  wave: z.number().int().nonnegative(),
  state: z.enum(siteStates),
  previous: previousSchema.nullable(),
  /** What the site reported after the last operation. */
  observed: z
    .object({
      image: z.string().nullable(),
      jalienVersion: z.string().nullable(),
      healthy: z.boolean(),
      services: z.record(z.string()),
    })
    .nullable(),
  /** How many times a deploy of the new version was started on this site by this rollout. */
  deploys: z.number().int().nonnegative(),
  restores: z.number().int().nonnegative(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** Milliseconds spent in deploy + health gate (the "per-site deploy time"). */
  deployMs: z.number().nonnegative().nullable(),
  error: z.string().nullable(),
  logTail: z.string().nullable(),
  events: z.array(siteEventSchema),
});
export type SiteRecord = z.infer<typeof siteRecordSchema>;

export const waveRecordSchema = z.object({
  index: z.number().int().nonnegative(),
  kind: z.enum(['canary', 'wave']),
  sites: z.array(z.string()),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type WaveRecord = z.infer<typeof waveRecordSchema>;

export const rolloutStatuses = ['planned', 'running', 'completed', 'failed', 'stopped', 'interrupted', 'aborted'] as const;
export type RolloutStatus = (typeof rolloutStatuses)[number];

export const rolloutOptionsSchema = z.object({
  canary: z.number().int().nonnegative(),
  concurrency: z.number().int().positive(),
  /** Stop when the number of failed sites exceeds this. */
  maxFailures: z.number().int().nonnegative(),
  /** Per-site budget for deploy + health gate, ms. */
  siteTimeoutMs: z.number().int().positive(),
  /** Budget for reading one site's state (reachability), ms. */
  statusTimeoutMs: z.number().int().positive(),
  /** How long the health gate waits for services / CE version, ms. */
  healthTimeoutMs: z.number().int().positive(),
  /** How many sites of one host may be deployed at the same time. */
  perHost: z.number().int().positive(),
  only: z.array(z.string()),
  exclude: z.array(z.string()),
});
export type RolloutOptions = z.infer<typeof rolloutOptionsSchema>;

export const rolloutRecordSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** The sites dir or inventory file this rollout was started from (absolute). */
  inventory: z.string(),
  target: targetSchema,
  options: rolloutOptionsSchema,
  status: z.enum(rolloutStatuses),
  stopReason: z.string().nullable(),
  /** The process currently running the rollout (null when none). */
  runner: z.object({ pid: z.number().int(), hostname: z.string(), startedAt: z.string() }).nullable(),
  /** Every time a runner started (the first run, then each resume). */
  runs: z.array(z.object({ pid: z.number().int(), startedAt: z.string(), endedAt: z.string().nullable(), kind: z.enum(['start', 'resume', 'abort']) })),
  waves: z.array(waveRecordSchema),
  sites: z.array(siteRecordSchema),
});
export type RolloutRecord = z.infer<typeof rolloutRecordSchema>;

export interface RolloutSummary {
  total: number;
  succeeded: number;
  failed: number;
  unreachable: number;
  skipped: number;
  pending: number;
  reverted: number;
}

export function summarize(record: RolloutRecord): RolloutSummary {
  const s: RolloutSummary = { total: record.sites.length, succeeded: 0, failed: 0, unreachable: 0, skipped: 0, pending: 0, reverted: 0 };
  for (const site of record.sites) {
    if (SUCCESS_STATES.has(site.state)) s.succeeded++;
    else if (site.state === 'unreachable') {
      s.unreachable++;
      s.failed++;
    } else if (FAILURE_STATES.has(site.state)) s.failed++;
    else if (site.state === 'skipped') s.skipped++;
    else if (site.state === 'reverted') s.reverted++;
    else s.pending++;
  }
  return s;
}

export function describeTarget(target: Target): string {
  const parts: string[] = [];
  if (target.image) parts.push(`image ${target.image}`);
  if (target.jalienVersion) parts.push(`JAliEn ${target.jalienVersion}`);
  return parts.join(' + ');
}
