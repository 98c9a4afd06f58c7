/** Terminal reports: the rollout table, the dry-run plan, and the JSON document of a rollout. */
import { formatTable } from '../../base/text-table.ts';
import type { DryRunSite } from './rollout.ts';
import { formatMs } from './timeout.ts';
import { describeTarget, summarize, type RolloutRecord } from './types.ts';

const short = (s: string | null | undefined, n = 48) => (!s ? '-' : s.length > n ? `...${s.slice(-(n - 3))}` : s);

export function versionOf(v: { image: string | null; jalienVersion: string | null } | null): string {
  if (!v) return '-';
  const img = short(v.image);
  return v.jalienVersion ? `${img} / ${v.jalienVersion}` : img;
}

export function formatRolloutTable(record: RolloutRecord): string {
  const rows = record.sites.map((s) => [
    s.site,
    s.host,
    `${s.wave + 1}${s.canary ? ' (canary)' : ''}`,
    s.state,
    versionOf(s.previous),
    versionOf(s.observed),
    s.observed ? (s.observed.healthy ? 'healthy' : 'UNHEALTHY') : '-',
    s.deployMs === null ? '-' : formatMs(s.deployMs),
    short(s.error, 70),
  ]);
  const sum = summarize(record);
  const head = [
    `rollout ${record.id}: ${describeTarget(record.target)}`,
    `status ${record.status}${record.stopReason ? ` (${record.stopReason})` : ''}; ${sum.succeeded}/${sum.total} on the new version, ${sum.failed} failed (${sum.unreachable} unreachable), ${sum.skipped} skipped, ${sum.pending} pending${sum.reverted ? `, ${sum.reverted} rolled back on request` : ''}`,
  ];
  return `${head.join('\n')}\n\n${formatTable(['SITE', 'HOST', 'WAVE', 'STATE', 'BEFORE', 'NOW', 'HEALTH', 'TIME', 'ERROR'], rows)}`;
}

export function formatDryRun(record: RolloutRecord, sites: DryRunSite[]): string {
  const rows = sites.map((s) => [
    `${s.wave + 1}${s.kind === 'canary' ? ' (canary)' : ''}`,
    s.site,
    s.host,
    s.current ? versionOf(s.current) : '-',
    s.error ? `UNREACHABLE: ${short(s.error, 60)}` : s.change ? 'deploy' : 'already on target',
  ]);
  return `dry run: ${describeTarget(record.target)} to ${sites.length} site(s) in ${record.waves.length} wave(s) (concurrency ${record.options.concurrency}, max failures ${record.options.maxFailures}); nothing changed\n\n${formatTable(['WAVE', 'SITE', 'HOST', 'NOW', 'ACTION'], rows)}`;
}

/** The JSON document of a rollout: the record plus a summary. */
export function rolloutJson(record: RolloutRecord, path: string): unknown {
  return { id: record.id, record: path, status: record.status, stopReason: record.stopReason, target: record.target, summary: summarize(record), waves: record.waves, sites: record.sites, options: record.options, runs: record.runs };
}
