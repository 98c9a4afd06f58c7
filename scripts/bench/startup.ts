/**
 * Benchmark: start-up time of the `gridforge` executable, the TypeScript sources through tsx (the old
 * way, forced with GRIDFORGE_TSX=1; tsx's transform cache cold, as after an edit or on a fresh
 * machine, and warm) against the build compiled by scripts/build.mjs (the new way).
 * Commands: `gridforge --help` (loads every command group) and `gridforge repo tags <repo>` (one
 * group, a small repository made with `repo init` + `repo publish`).
 * Runs on a private copy of the sources (the checkout is shared and edited, which would make its
 * build stale mid-run), node_modules linked.
 * Run: node --import tsx scripts/bench/startup.ts [--runs 10] [--keep]   (medians of --runs, interleaved)
 * Target: each command <= 0.4 s compiled.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_FILES } from '../build-stamp.mjs';
import { formatTable } from '../lib/output.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const COPIED = PROJECT_FILES;
const args = process.argv.slice(2);
const runs = Math.max(1, Number(args[args.indexOf('--runs') + 1] ?? 10) || 10);
const keep = args.includes('--keep');
const TARGET_S = 0.4;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gridforge-bench-startup-'));
const copy = path.join(work, 'src');

/** Builds the copy; says whether it was already current (proof it stayed current through the runs). */
function build(): string {
  const r = spawnSync(process.execPath, [path.join(copy, 'scripts/build.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  return r.stderr.trim();
}

function prepare(): string {
  fs.mkdirSync(copy);
  execFileSync('cp', ['-a', ...COPIED, copy], { cwd: ROOT });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  console.error(build());
  const repo = path.join(work, 'repo');
  const tree = path.join(work, 'tree');
  fs.mkdirSync(path.join(tree, 'bin'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(tree, 'bin', `tool${i}`), `#!/bin/sh\necho tool ${i}\n`);
  gridforge(['repo', 'init', repo, '--name', 'bench.cern.ch'], {});
  gridforge(['repo', 'publish', repo, tree, '--path', 'pkg/1.0', '--tag', 'pkg-1.0'], {});
  return repo;
}

/** Wall-clock seconds of one run, from spawn to exit. */
function gridforge(argv: string[], env: Record<string, string>): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(copy, 'scripts/bin/gridforge.mjs'), ...argv], {
    cwd: copy, env: { ...process.env, GRIDFORGE_QUIET: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8',
  });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`gridforge ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return s;
}

type Mode = { name: string; env: () => Record<string, string> };
const MODES: Mode[] = [
  // a fresh TMPDIR per run: tsx keeps its transform cache in $TMPDIR/tsx-<uid>/
  { name: 'tsx, cold cache', env: () => ({ GRIDFORGE_TSX: '1', TMPDIR: fs.mkdtempSync(path.join(work, 'tmp-')) }) },
  { name: 'tsx, warm cache', env: () => ({ GRIDFORGE_TSX: '1' }) },
  { name: 'compiled', env: () => ({}) },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main(): void {
  const repo = prepare();
  const commands: [string, string[]][] = [['--help', ['--help']], ['repo tags <repo>', ['repo', 'tags', repo]]];
  const times = new Map<string, number[]>();
  for (const [, argv] of commands) gridforge(argv, MODES[1].env()); // warm tsx's cache once
  for (let i = 0; i < runs; i++) {
    for (const [label, argv] of commands) {
      for (const m of MODES) {
        const key = `${label}\0${m.name}`;
        times.set(key, [...(times.get(key) ?? []), gridforge(argv, m.env())]);
      }
    }
  }
  const after = build();
  if (!after.includes('up to date')) throw new Error(`the build went stale during the runs: ${after}`);
  const rows = commands.map(([label]) => {
    const med = MODES.map((m) => median(times.get(`${label}\0${m.name}`)!));
    const compiled = med[2];
    return [`gridforge ${label}`, ...med.map((s) => s.toFixed(3)), `${(med[0] / compiled).toFixed(1)}x`, `${(med[1] / compiled).toFixed(1)}x`,
      compiled <= TARGET_S ? 'yes' : 'NO'];
  });
  console.log(`start-up, median of ${runs} runs (s); node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
  console.log(formatTable(['command', ...MODES.map((m) => m.name), 'cold/compiled', 'warm/compiled', `<= ${TARGET_S} s`], rows));
}

try {
  main();
} finally {
  if (keep) console.error(`kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}
