/**
 * `gridforge rollout ...`: central rollouts across sites (canary waves, health gates, automatic
 * rollback, resumable record, reports). Parses arguments and prints; the work is in stacks/rollout.
 */
import { resolve } from 'node:path';
import { writeFileAtomic } from '../../base/safe-fs.ts';
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { printJson, printLine, progress, warn } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { collect, wholeNumber, seconds } from './options.ts';
import { summaryOf } from './groups.ts';
import {
  abortRollout,
  DEFAULT_OPTIONS,
  DEFAULT_RECORD_DIR,
  dryRunRollout,
  formatDryRun,
  formatRolloutTable,
  listRecords,
  loadRecord,
  recordPath,
  renderRolloutHtml,
  resumeRollout,
  rolloutJson,
  splitGlobs,
  startRollout,
  summarize,
  SUCCESS_STATES,
  type RolloutOptions,
  type RolloutRecord,
  type SiteDriver,
} from '../../stacks/rollout/index.ts';

async function engineDriver(): Promise<SiteDriver> {
  const { createEngineDriver } = await import('../../stacks/rollout/engine-driver.ts');
  return createEngineDriver();
}

const stamp = () => new Date().toISOString().slice(11, 19);
const live = (line: string) => progress(`${stamp()} ${line}`);

function writeHtml(file: string, record: RolloutRecord): void {
  const abs = resolve(file);
  // Random exclusive temporary + rename (base/safe-fs.ts): a planted symlink is never followed.
  writeFileAtomic(abs, renderRolloutHtml(record), { mode: 0o644 });
  progress(`HTML report: ${abs}`);
}

/** 0 only when every targeted site is on the new version and healthy. */
function exitCodeFor(record: RolloutRecord): number {
  return record.sites.every((s) => SUCCESS_STATES.has(s.state)) ? 0 : 1;
}

function report(record: RolloutRecord, path: string, opts: { json?: boolean; html?: string }): void {
  if (opts.html) writeHtml(opts.html, record);
  if (opts.json) printJson(rolloutJson(record, path));
  else {
    printLine(formatRolloutTable(record));
    printLine();
    printLine(`record: ${path}`);
    const s = summarize(record);
    if (record.status === 'interrupted' || record.status === 'stopped' || s.pending > 0 || s.skipped > 0) {
      printLine(`continue with: gridforge rollout resume ${record.id}${record.status === 'stopped' ? ` --max-failures ${s.failed}` : ''}`);
    }
  }
}

/** First Ctrl-C: finish running sites, start no new ones. Second: quit now (resume continues). */
function softStop(): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!ctl.signal.aborted) {
      warn(`${sig}: stopping after the running sites finish (again to quit now; \`gridforge rollout resume\` continues)`);
      ctl.abort();
    } else {
      warn(`${sig}: quitting now; the record keeps every finished site`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ctl.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

interface StartFlags {
  image?: string;
  jalien?: string;
  canary: number;
  concurrency: number;
  maxFailures: number;
  only?: string[];
  exclude?: string[];
  dryRun?: boolean;
  siteTimeout?: number;
  healthTimeout?: number;
  statusTimeout?: number;
  perHost: number;
  recordDir: string;
  record?: string;
  html?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const rollout = withJson(
    program
      .command('rollout')
      .description(summaryOf('rollout'))
      .argument('[inventory]', 'a directory of site files (sites/) or an inventory.yaml listing them')
      .option('--image <ref>', 'the new VO-box image (reference or local docker-save archive)')
      .option('--jalien <version>', 'the new JAliEn version (the CE must report it)')
      .option('--canary <n>', 'canary sites, deployed first (inventory `canary: true` first, then inventory order)', wholeNumber('--canary', 0), DEFAULT_OPTIONS.canary)
      .option('--concurrency <n>', 'sites deployed at the same time (wave size)', wholeNumber('--concurrency', 1), DEFAULT_OPTIONS.concurrency)
      .option('--max-failures <n>', 'stop when more than this many sites failed (default 0: stop at the first failure, i.e. a failed canary; with resume: the new budget)', wholeNumber('--max-failures', 0), DEFAULT_OPTIONS.maxFailures)
      .option('--only <glob>', 'only sites whose name matches (repeatable, comma-separated)', collect)
      .option('--exclude <glob>', 'skip sites whose name matches (repeatable, comma-separated)', collect)
      .option('--dry-run', 'print the waves and every site\'s current version; change nothing')
      .option('--site-timeout <s>', `budget per site for the deploy, seconds (default: ${DEFAULT_OPTIONS.siteTimeoutMs / 1000})`, seconds('--site-timeout'))
      .option('--health-timeout <s>', `how long the health gate waits, seconds (default: ${DEFAULT_OPTIONS.healthTimeoutMs / 1000})`, seconds('--health-timeout'))
      .option('--status-timeout <s>', `budget for reading one site (unreachable sites fail after it), seconds (default: ${DEFAULT_OPTIONS.statusTimeoutMs / 1000})`, seconds('--status-timeout'))
      .option('--per-host <n>', 'VO-boxes of one Docker host deployed at the same time', wholeNumber('--per-host', 1), DEFAULT_OPTIONS.perHost)
      .option('--record-dir <dir>', 'directory of rollout records and site locks', DEFAULT_RECORD_DIR)
      .option('--record <file>', 'write the rollout record to this file (its directory holds the locks)')
      .option('--html <file>', 'also write the self-contained HTML report to this file'),
  ).configureHelp({ showGlobalOptions: true });
  rollout.action(
    action(async (inventory: string | undefined, flags: StartFlags) => {
      if (!inventory) throw new UsageError('missing the sites directory or inventory file', { hint: 'gridforge rollout sites/ --image <ref> (or see `gridforge rollout --help`)' });
      if (!flags.image && !flags.jalien) throw new UsageError('nothing to roll out', { hint: 'give --image <ref or archive> or --jalien <version>' });
      const options: Partial<RolloutOptions> = {
        canary: flags.canary,
        concurrency: flags.concurrency,
        maxFailures: flags.maxFailures,
        siteTimeoutMs: flags.siteTimeout ?? DEFAULT_OPTIONS.siteTimeoutMs,
        healthTimeoutMs: flags.healthTimeout ?? DEFAULT_OPTIONS.healthTimeoutMs,
        statusTimeoutMs: flags.statusTimeout ?? DEFAULT_OPTIONS.statusTimeoutMs,
        perHost: flags.perHost,
        only: splitGlobs(flags.only),
        exclude: splitGlobs(flags.exclude),
      };
      const target = { image: flags.image, jalienVersion: flags.jalien };
      const driver = await engineDriver();
      try {
        if (flags.dryRun) {
          const { record, sites } = await dryRunRollout({ inventory, target, options, driver });
          if (flags.json) printJson({ dryRun: true, target: record.target, options: record.options, waves: record.waves, sites });
          else printLine(formatDryRun(record, sites));
          return 0;
        }
        const stop = softStop();
        try {
          const { record, path } = await startRollout(
            { inventory, target, options, driver, recordDir: flags.recordDir, recordFile: flags.record },
            { onProgress: live, stop: stop.signal },
          );
          report(record, path, flags);
          return exitCodeFor(record);
        } finally {
          stop.dispose();
        }
      } finally {
        await driver.close?.();
      }
    }),
  );

  // Shared flags (--json, --html, --record-dir, --max-failures) are defined once, on `rollout`:
  // commander hands flags that follow a subcommand to the parent when both define them, so the
  // subcommands read them from there (optsWithGlobals) and list them under "Global Options".
  const shared = (cmd: Command) => cmd.optsWithGlobals() as { json?: boolean; html?: string; recordDir: string; maxFailures: number };

  rollout
    .command('resume')
    .description('Continue a rollout after a crash, Ctrl-C or lost connection; finished sites are not deployed again (--max-failures raises the failure budget of a rollout that stopped on failures)')
    .argument('<id>', 'rollout id (or the path of its record)')
    .action(
      action(async (id: string, _local: unknown, cmd: Command) => {
        const flags = shared(cmd);
        const maxFailures = rollout.getOptionValueSource('maxFailures') === 'cli' ? flags.maxFailures : undefined;
        const driver = await engineDriver();
        const stop = softStop();
        try {
          const { record, path } = await resumeRollout({ idOrPath: id, driver, recordDir: flags.recordDir, maxFailures }, { onProgress: live, stop: stop.signal });
          report(record, path, flags);
          return exitCodeFor(record);
        } finally {
          stop.dispose();
          await driver.close?.();
        }
      }),
    );

  rollout
    .command('status')
    .description('Show a rollout from its record (sites, states, failures)')
    .argument('<id>', 'rollout id (or the path of its record)')
    .action(
      action(async (id: string, _local: unknown, cmd: Command) => {
        const flags = shared(cmd);
        const path = recordPath(id, flags.recordDir);
        const record = loadRecord(path);
        report(record, path, flags);
        return 0;
      }),
    );

  rollout
    .command('abort')
    .description('Stop a rollout (a running one finishes its current sites first); with --rollback, return every site it changed to what it ran before')
    .argument('<id>', 'rollout id (or the path of its record)')
    .option('--rollback', 'roll back the sites this rollout already changed')
    .action(
      action(async (id: string, local: { rollback?: boolean }, cmd: Command) => {
        const flags = shared(cmd);
        const driver = await engineDriver();
        try {
          const { record, path } = await abortRollout({ idOrPath: id, driver, recordDir: flags.recordDir, rollback: !!local.rollback }, { onProgress: live });
          report(record, path, flags);
          return record.sites.some((s) => s.state === 'rollback-failed') ? 1 : 0;
        } finally {
          await driver.close?.();
        }
      }),
    );

  rollout
    .command('list')
    .description('List the rollout records (newest first)')
    .action(
      action(async (_local: unknown, cmd: Command) => {
        const flags = shared(cmd);
        const list = listRecords(flags.recordDir);
        if (flags.json) {
          printJson(list.map(({ path, record }) => ({ id: record.id, path, status: record.status, createdAt: record.createdAt, target: record.target, summary: summarize(record) })));
          return 0;
        }
        if (list.length === 0) printLine(`no rollout records in ${resolve(flags.recordDir)}`);
        for (const { record } of list) {
          const s = summarize(record);
          printLine(`${record.id}  ${record.status.padEnd(11)}  ${s.succeeded}/${s.total} ok, ${s.failed} failed  ${record.target.image ?? ''}${record.target.jalienVersion ? ` JAliEn ${record.target.jalienVersion}` : ''}`);
        }
        return 0;
      }),
    );
}
