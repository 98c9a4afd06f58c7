/** `gridforge fleet status <sites>`: per site image, JAliEn version, uptime, health, read in parallel. */
import { resolve } from 'node:path';
import { writeFileAtomic } from '../../base/safe-fs.ts';
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { formatTable, printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { fleetStatus, renderFleetHtml, splitGlobs, type FleetRow } from '../../stacks/rollout/index.ts';
import { collect, wholeNumber } from './options.ts';
import { summaryOf } from './groups.ts';
import { formatMs } from '../../stacks/rollout/timeout.ts';

function health(r: FleetRow): string {
  if (r.error) return 'UNREACHABLE';
  if (r.healthy) return 'healthy';
  const bad = Object.entries(r.services).filter(([, s]) => s !== 'RUNNING');
  return bad.length ? `UNHEALTHY (${bad.map(([n, s]) => `${n}=${s}`).join(', ')})` : r.image ? 'UNHEALTHY' : 'NO VO-BOX';
}

export function register(program: Command): void {
  const fleet = program.command('fleet').description(summaryOf('fleet'));
  withJson(
    fleet
      .command('status')
      .description('Per site: image, JAliEn version, uptime, health; sites read in parallel, each under a timeout')
      .argument('<sites>', 'a directory of site files (sites/) or an inventory.yaml listing them')
      .option('--concurrency <n>', 'sites read at the same time', wholeNumber('--concurrency', 1), 16)
      .option('--timeout <s>', 'budget per site, seconds (unreachable sites are reported after it; default: 20)', (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got "${v}"`, { where: '--timeout', hint: 'give e.g. --timeout 20' });
        return Math.round(n * 1000);
      })
      .option('--only <glob>', 'only sites whose name matches (repeatable, comma-separated)', collect)
      .option('--exclude <glob>', 'skip sites whose name matches (repeatable, comma-separated)', collect)
      .option('--html <file>', 'also write a self-contained HTML page')
      .option('--check', 'exit 1 when any site is unreachable or unhealthy'),
  ).action(
    action(async (source: string, flags: { concurrency: number; timeout?: number; only?: string[]; exclude?: string[]; html?: string; check?: boolean; json?: boolean }) => {
      const { createEngineDriver } = await import('../../stacks/rollout/engine-driver.ts');
      const driver = createEngineDriver();
      let rows: FleetRow[];
      const t0 = Date.now();
      flags.timeout ??= 20_000;
      try {
        progress(`reading sites of ${source} (concurrency ${flags.concurrency}, timeout ${formatMs(flags.timeout)})`);
        rows = await fleetStatus(source, driver, { concurrency: flags.concurrency, timeoutMs: flags.timeout, only: splitGlobs(flags.only), exclude: splitGlobs(flags.exclude) });
      } finally {
        await driver.close?.();
      }
      if (flags.html) {
        const abs = resolve(flags.html);
        // Random exclusive temporary + rename (base/safe-fs.ts): a planted symlink is never followed.
        writeFileAtomic(abs, renderFleetHtml(rows, resolve(source)), { mode: 0o644 });
        progress(`HTML page: ${abs}`);
      }
      // elastic worker nodes of the sites that have a pool (elastic/fleet.ts)
      const { fleetElastic, formatFleetElastic } = await import('../../elastic/index.ts');
      const elastic = await fleetElastic(rows.map((r) => r.file), flags.timeout);
      const elasticOf = (r: FleetRow) => elastic.find((e) => e.file === r.file);
      const bad = rows.filter((r) => r.error || !r.healthy).length;
      if (flags.json) {
        printJson({ source: resolve(source), at: new Date().toISOString(), ms: Date.now() - t0, healthy: rows.length - bad, total: rows.length, sites: rows.map((r) => ({ ...r, ...(elasticOf(r) ? { elastic: elasticOf(r) } : {}) })) });
      } else {
        printLine(
          formatTable(
            ['SITE', 'HOST', 'IMAGE', 'JALIEN', 'UPTIME', 'HEALTH', ...(elastic.length ? ['ELASTIC NODES'] : [])],
            rows.map((r) => [r.site, r.host, r.image ?? '-', r.jalienVersion ?? '-', r.uptimeSeconds === null ? '-' : formatMs(r.uptimeSeconds * 1000), health(r) + (r.error ? `: ${r.error}` : ''), ...(elastic.length ? [formatFleetElastic(elasticOf(r))] : [])]),
          ),
        );
        printLine();
        printLine(`${rows.length - bad}/${rows.length} site(s) healthy (read in ${formatMs(Date.now() - t0)})`);
      }
      return flags.check && bad > 0 ? 1 : 0;
    }),
  );
}
