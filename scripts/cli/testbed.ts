/**
 * `gridforge testbed up|status|smoke|down|agent-jar`: a local ALICE site on this machine and smoke
 * jobs through it (testbed/README.md). Parses, calls one function of testbed/index.ts, prints.
 */
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { buildAgentJar, destroyTestbed, formatSmokeReport, testbedSmoke, testbedStatus, testbedUp } from '../../testbed/index.ts';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { summaryOf } from './groups.ts';
import { optionalInt } from './options.ts';
import { configuredRepoDir } from './project-config.ts';


export function register(program: Command): void {
  const tb = program.command('testbed').description(summaryOf('testbed'));
  withJson(
    tb
      .command('up')
      .description('start the site: Slurm controller, worker nodes (slurmd), the VO-box host, the repository served and mounted on every worker at /cvmfs/<name>')
      .option('--workers <n>', 'number of worker nodes (1..8, default 2)')
      .option('--repo <repo-dir>', 'the repository to serve (default repository.dir of gridforge.yaml)')
      .option('--tag <tag>', 'revision the worker nodes see (default the newest)')
      .option('--elastic <n>', 'elastic site: a pool of at most n cloud nodes Slurm creates on demand (elastic/README.md); --workers defaults to 0'),
  ).action(
    action(async (opts: { workers?: string; repo?: string; tag?: string; elastic?: string; json?: boolean }, cmd: Command) => {
      const repo = opts.repo ?? configuredRepoDir(cmd);
      if (!repo) throw new UsageError('no repository given', { where: '--repo', hint: 'pass --repo <repo-dir> (or set repository.dir in gridforge.yaml)' });
      const maxNodes = optionalInt('--elastic', opts.elastic);
      const r = await testbedUp({ workers: optionalInt('--workers', opts.workers), repo, tag: opts.tag, onProgress: progress, ...(maxNodes !== undefined ? { elastic: { maxNodes } } : {}) });
      if (opts.json) return printJson({ seconds: r.seconds, cvmfs: r.cvmfs, state: r.state });
      printLine(`testbed up in ${r.seconds.toFixed(1)} s: ${r.state.hosts.filter((h) => h.role === 'worker').length} worker node(s); /cvmfs/${r.state.repo?.name} ${r.cvmfs === 'cvmfs2' ? 'mounted with the stock cvmfs client' : `is a checkout of ${r.state.repo?.tag ? `tag ${r.state.repo.tag}` : 'the newest revision'} (no stock cvmfs client found)`}`);
      printLine(`state ${r.state.dir}/state.json; next: gridforge testbed smoke, gridforge testbed down`);
    }),
  );
  withJson(tb.command('status').description('hosts, their processes, and what Slurm says about the worker nodes')).action(
    action(async (opts: { json?: boolean }) => {
      const s = await testbedStatus();
      if (opts.json) return printJson(s);
      if (!s.state) return printLine(`no testbed (${s.prefix})`);
      printLine(`testbed ${s.prefix}: ${s.up ? 'up' : s.state.phase === 'up' ? 'broken (a host is gone; run testbed down)' : s.state.phase}`);
      for (const h of s.hosts) printLine(`  ${h.name.padEnd(6)} ${h.role.padEnd(10)} ${h.address.padEnd(15)} ${h.alive ? 'alive' : 'gone '} ${h.processes} processes${s.nodes.find((n) => n.name === h.name) ? `, Slurm: ${s.nodes.find((n) => n.name === h.name)!.state}` : ''}`);
      if (s.state.vobox) printLine(`  VO-box container ${s.state.vobox.container} (${s.state.vobox.image}) on the vobox host's dockerd, deployed from ${s.state.dir}/site.yaml`);
      if (s.state.repo) printLine(`  repository ${s.state.repo.name} from ${s.state.repo.url ?? '-'} (${s.state.repo.mode ?? '-'}${s.state.repo.tag ? `, tag ${s.state.repo.tag}` : ''})`);
      return s.up ? 0 : 1;
    }),
  );
  withJson(
    tb
      .command('smoke')
      .description('submit smoke jobs through the VO-box submitter and Slurm; report per job; exit 1 when one fails')
      .option('--jobs <k>', 'number of jobs (default 2)')
      .option('--tag <tag>', 'switch the worker nodes to this revision first')
      .option('--jalien-version <v>', 'set up this JAliEn version instead of the module default (a candidate released with --no-default)'),
  ).action(
    action(async (opts: { jobs?: string; tag?: string; jalienVersion?: string; json?: boolean }) => {
      const r = await testbedSmoke({ jobs: optionalInt('--jobs', opts.jobs), tag: opts.tag, jalienVersion: opts.jalienVersion, onProgress: progress });
      if (opts.json) printJson(r);
      else process.stdout.write(formatSmokeReport(r));
      return r.ok ? 0 : 1;
    }),
  );
  withJson(tb.command('down').description('remove everything testbed up made (also after a crash of up)')).action(
    action(async (opts: { json?: boolean }) => {
      const r = await destroyTestbed();
      if (opts.json) return printJson(r);
      printLine(r.removed.length ? `removed: ${r.removed.join(', ')}` : `nothing to remove (${r.prefix})`);
    }),
  );
  withJson(
    tb
      .command('agent-jar')
      .description('build the contract JobAgent/JobWrapper (testbed/agent/) into a jar to publish with `release jalien <v> --jar`')
      .requiredOption('-o, --output <file.jar>', 'where to write it, e.g. build/alien-users.jar'),
  ).action(
    action(async (opts: { output: string; json?: boolean }) => {
      const jar = await buildAgentJar(opts.output);
      if (opts.json) return printJson({ jar });
      printLine(jar);
    }),
  );
}
