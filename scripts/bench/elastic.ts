/**
 * Benchmark: elastic worker nodes (elastic/README.md) on the testbed, images already built.
 *   1. ResumeProgram called -> node IDLE in Slurm (the wrapper's start to slurmd registered, from the
 *      node life log), per node of a cold pool: target <= 20 s (AliEC2: ~150 s per JobAgent);
 *   2. 20 jobs (sleep 5, one CPU each) on a pool of at most 3 nodes (2 CPUs each), submit -> all
 *      COMPLETED, against the same 20 jobs on 3 static worker nodes (2 CPUs each) in the same run.
 * Run: node --import tsx scripts/bench/elastic.ts [--jobs 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPool, readLife } from '../../elastic/index.ts';
import { loadSiteSpec } from '../../stacks/index.ts';
import { destroyTestbed, readState, testbedDir, testbedUp, type TestbedState } from '../../testbed/index.ts';
import { jobs as jobRecords, sleep, submit, tinyRepo } from '../../test/elastic/helpers.ts';
import { formatTable } from '../lib/output.ts';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--jobs') + 1] ?? 20) || 20;
const PREFIX = 'gfeb';
const work = mkdtempSync(join(tmpdir(), 'gridforge-bench-elastic-'));
const rows: string[][] = [];

async function makespan(st: TestbedState, n: number): Promise<number> {
  const t0 = Date.now();
  const ids = await submit(st, n, 'sleep 5');
  for (;;) {
    const js = (await jobRecords(st)).filter((j) => ids.includes(j.id));
    if (js.some((j) => /FAILED|CANCELLED|NODE_FAIL/.test(j.state))) throw new Error(`a job failed: ${JSON.stringify(js)}`);
    if (js.length === n && js.every((j) => j.state === 'COMPLETED')) return (Date.now() - t0) / 1000;
    await sleep(250);
  }
}

try {
  await destroyTestbed(PREFIX);
  const repo = await tinyRepo(work);
  // elastic: no static worker node, a pool of at most 3 nodes of 2 CPUs
  await testbedUp({ prefix: PREFIX, repo, elastic: { maxNodes: 3, cpus: 2, suspendTime: 15, resumeTimeout: 60 } });
  let st = readState(testbedDir(PREFIX))!;
  const elastic = await makespan(st, N);
  const pool = loadPool(loadSiteSpec(join(st.dir, 'site.yaml'), { checkSiblings: false }));
  const reg = readLife(pool).filter((l) => l.event === 'registered').map((l) => Number(l.seconds));
  const worst = Math.max(...reg);
  rows.push(['ResumeProgram called -> node IDLE (per node, cold pool)', reg.map((s) => s.toFixed(1)).join(' / ') + ' s', '<= 20 s', worst <= 20 ? 'ok' : 'OVER']);
  rows.push([`${N} jobs (sleep 5) on a pool of <= 3 elastic nodes, from empty`, `${elastic.toFixed(1)} s`, '', '']);
  await destroyTestbed(PREFIX);
  await testbedUp({ prefix: PREFIX, repo, workers: 3, voboxImage: false });
  st = readState(testbedDir(PREFIX))!;
  const stat = await makespan(st, N);
  rows.push([`${N} jobs (sleep 5) on 3 static worker nodes`, `${stat.toFixed(1)} s`, '', `elastic +${(elastic - stat).toFixed(1)} s`]);
  process.stdout.write(`${formatTable(['what', 'measured', 'target', ''], rows)}\n`);
} finally {
  await destroyTestbed(PREFIX);
  rmSync(work, { recursive: true, force: true });
}
