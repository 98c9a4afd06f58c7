/**
 * Benchmark: the testbed (testbed/README.md) on this machine, images already built.
 *   1. `testbed up --workers 2` (controller, 2 worker nodes, the VO-box deployed with the site deploy
 *      engine, the repository served and checked out): target <= 180 s;
 *   2. one smoke job at a time with warm caches, sbatch -> the payload's output: target <= 30 s each;
 *   3. 20 jobs over the 2 worker nodes at once: wall time and throughput (jobs/min).
 * The repository is made like the suite's (test/testbed/helpers.ts smokeRepo): the 32-bit runtime,
 * a JAliEn release with the contract JobAgent/JobWrapper, a small job container.
 * Run: node --import tsx scripts/bench/testbed.ts [--jobs 20] [--keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyTestbed, testbedSmoke, testbedUp } from '../../testbed/index.ts';
import { smokeRepo } from '../../test/testbed/helpers.ts';
import { formatTable } from '../lib/output.ts';

const args = process.argv.slice(2);
const jobs = Number(args[args.indexOf('--jobs') + 1] ?? 20) || 20;
const PREFIX = 'gfbn';
process.env.GRIDFORGE_TESTBED_PREFIX = PREFIX;

const work = mkdtempSync(join(tmpdir(), 'gridforge-bench-testbed-'));
const rows: string[][] = [];
try {
  await destroyTestbed(PREFIX);
  const repo = await smokeRepo(work);
  const up = await testbedUp({ repo, workers: 2, prefix: PREFIX });
  rows.push(['testbed up --workers 2 (with the VO-box deploy)', `${up.seconds.toFixed(1)} s`, '<= 180 s', up.seconds <= 180 ? 'ok' : 'OVER']);
  await testbedSmoke({ prefix: PREFIX, jobs: 1 }); // warm: page cache, JIT-less first JVM start
  const single: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await testbedSmoke({ prefix: PREFIX, jobs: 1 });
    if (!r.ok) throw new Error(`smoke job failed: ${r.jobs[0].step}: ${r.jobs[0].reason}`);
    single.push(r.jobs[0].toDoneSeconds!);
  }
  const worst = Math.max(...single);
  rows.push(['one job, sbatch -> payload output (3 runs, warm)', single.map((s) => s.toFixed(1)).join(' / ') + ' s', '<= 30 s', worst <= 30 ? 'ok' : 'OVER']);
  const many = await testbedSmoke({ prefix: PREFIX, jobs });
  const perNode = new Map<string, number>();
  for (const j of many.jobs) perNode.set(j.node ?? '?', (perNode.get(j.node ?? '?') ?? 0) + 1);
  const ok = many.jobs.filter((j) => j.ok).length;
  rows.push([`${jobs} jobs over 2 worker nodes (${[...perNode].map(([n, c]) => `${n}: ${c}`).join(', ')})`, `${many.seconds.toFixed(1)} s, ${ok}/${jobs} ok`, '-', `${many.jobsPerMinute.toFixed(1)} jobs/min`]);
  const slowest = Math.max(...many.jobs.map((j) => j.toDoneSeconds ?? Infinity));
  rows.push([`  slowest of the ${jobs}, sbatch -> output (queued behind others)`, `${slowest.toFixed(1)} s`, '-', '-']);
} finally {
  if (!args.includes('--keep')) await destroyTestbed(PREFIX);
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(`${formatTable(['measure', 'result', 'target', 'verdict'], rows)}\n`);
