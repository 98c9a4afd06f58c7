/** `gridforge migrate check`: which nodes and sites can run a job image, and why the others cannot (rules in probes/readiness.ts). */
import type { Command } from 'commander';
import { formatTable, printJson, printLine } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { collect } from './options.ts';
import { summaryOf } from './groups.ts';
import { configuredRepoDir } from './project-config.ts';
import { UsageError } from '../../base/errors.ts';
import { migrateCheck } from '../../probes/index.ts';

/** Not-ready nodes listed in the human output (all with --json). */
const SHOWN_NODES = 50;

export function register(program: Command): void {
  const migrate = program.command('migrate').description(summaryOf('migrate'));

  withJson(migrate.command('check <image-path-in-repo>').description('which nodes and sites can run the image, from the probe results; why the others cannot'))
    .requiredOption('--results <store>', 'results store written by `probe serve`')
    .option('--repo <repo>', 'the repository holding the image (default: repository.dir of gridforge.yaml)')
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .option('--site <name>', 'only this site (repeatable)', collect)
    .option('--where <key=value>', 'only nodes with this fact (repeatable)', collect)
    .action(action(async (image: string, o: { json?: boolean; results: string; repo?: string; publicKey?: string; site?: string[]; where?: string[] }, cmd: Command) => {
      const repoDir = o.repo ?? configuredRepoDir(cmd);
      if (!repoDir) throw new UsageError('no repository given', { where: '--repo', hint: 'pass --repo <repo-dir> (or set repository.dir in gridforge.yaml)' });
      const r = await migrateCheck({ repoDir, image, results: o.results, publicKey: o.publicKey, sites: o.site, where: o.where });
      if (o.json) return printJson(r);
      const req = r.image;
      printLine(`image ${req.path}${req.resolved !== req.path ? ` (-> ${req.resolved})` : ''}: ${req.arch ?? 'unknown arch'}${req.arch === 'x86_64' ? `, needs x86-64-v${req.x86_64_level} (${req.levelFrom})` : ''}; OS ${req.os.id ?? '?'} ${req.os.versionId ?? ''}; bind points ${Object.entries(req.bindPoints).map(([b, ok]) => `${b} ${ok ? 'present' : 'MISSING'}`).join(', ')}`);
      for (const p of r.imageProblems) printLine(`image problem: ${p.detail}`);
      printLine(`${r.ready} of ${r.nodes} nodes (${r.percent}%) can run it; repository ${r.repository} must be mounted`);
      printLine('');
      printLine(formatTable(['site', 'nodes', 'ready', 'share', 'why not (nodes)'], r.sites.map((s) => [s.site, s.nodes, s.ready, `${s.percent}%`, Object.entries(s.reasons).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')])));
      if (r.notReady.length) {
        printLine('');
        printLine(formatTable(['node', 'site', 'ce', 'why not'], r.notReady.slice(0, SHOWN_NODES).map((n) => [n.hostname, n.site, n.ce, n.reasons.map((x) => x.detail).join('; ')])));
        if (r.notReady.length > SHOWN_NODES) printLine(`... and ${r.notReady.length - SHOWN_NODES} more nodes (--json lists all)`);
      }
    }));
}
