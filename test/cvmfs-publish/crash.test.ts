/**
 * Crash safety: a child process publishing a new tree is SIGKILLed at random points in the object,
 * catalog and manifest stages (>= 20 runs). After each kill `verify` passes and the served
 * revision is entirely the old tree or entirely the new one, never a mix; `abort` then clears
 * the stale lock so the next publish can run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { abortTransaction, initRepository, openRepository, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { ROOT, rmrf, tmpDir } from './helpers.ts';

const RUNS = 24;
const STEP_DELAY = 200; // ms per commit step: leaves >= 600 ms between a pre-commit stage line and the commit point, even on a loaded machine
const TARGETS = ['publish:', 'stage: catalogs', 'catalog:', 'stage: whitelist', 'stage: manifest', 'stage: reflog'];
let dir: string;
let repo: string;

function makeSource(i: number): Map<string, string> {
  const src = path.join(dir, `src-${i}`);
  const files = new Map<string, string>();
  for (let d = 0; d < 8; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) {
      const rel = `d${d}/f${f}`;
      const content = `run ${i} file ${rel} `.repeat(40 + ((i * 7 + f) % 60));
      fs.writeFileSync(path.join(src, rel), content);
      files.set(`/img/${rel}`, content);
    }
  }
  fs.writeFileSync(path.join(src, 'version'), `v${i}\n`);
  files.set('/img/version', `v${i}\n`);
  return files;
}

async function served(): Promise<Map<string, string>> {
  const r = await openRepository(repo);
  const out = new Map<string, string>();
  for await (const e of r.walk('/img')) if (e.type === 'file' && !e.path.endsWith('.cvmfscatalog')) out.set(e.path, (await r.readFile(e.path)).toString());
  return out;
}

function same(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

beforeAll(async () => {
  dir = tmpDir('crash');
  repo = path.join(dir, 'repo');
  await initRepository(repo, { name: 'crash.example.org' });
});
afterAll(() => rmrf(dir));

it(`survives ${RUNS} publishers killed at random points (objects, catalogs, manifest)`, async () => {
  let current = makeSource(0);
  await publishTree(repo, path.join(dir, 'src-0'), 'img', { onProgress: () => {} });
  const outcomes: { target: string; delay: number; result: 'old' | 'new'; sawStage: string }[] = [];
  for (let i = 1; i <= RUNS; i++) {
    const next = makeSource(i);
    const target = TARGETS[i % TARGETS.length];
    const delay = Math.floor(Math.random() * (STEP_DELAY + 20));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/cvmfs-publish/crash-child.ts'), repo, path.join(dir, `src-${i}`), 'img'], {
      cwd: ROOT,
      env: { ...process.env, GRIDFORGE_TXN_STEP_DELAY_MS: String(STEP_DELAY) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let lastStage = '';
    let log = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await new Promise<void>((resolve) => {
      let armed = false;
      child.stderr.on('data', (b: Buffer) => {
        log += b.toString();
        for (const line of b.toString().split('\n')) if (line) lastStage = line.split(' ').slice(0, 2).join(' ');
        if (!armed && log.split('\n').some((l) => l.startsWith(target))) {
          armed = true;
          setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, delay);
        }
      });
      void exited.then(() => resolve());
    });
    await exited;
    // the repository verifies and serves exactly the old or the new tree
    const v = await verifyRepository(repo);
    expect(v.problems, `run ${i} (${target}+${delay}ms)\n${log}`).toEqual([]);
    const now = await served();
    const result = same(now, next) ? 'new' : same(now, current) ? 'old' : undefined;
    expect(result, `run ${i}: served tree is a mix (${target}+${delay}ms)`).toBeDefined();
    outcomes.push({ target, delay, result: result!, sawStage: lastStage });
    if (result === 'new') current = next;
    abortTransaction(repo);
    rmrf(path.join(dir, `src-${i - 1}`));
  }
  // kills landed in every stage: before the commit point (old tree) and after it (new tree)
  expect(outcomes.length).toBeGreaterThanOrEqual(20);
  expect(outcomes.filter((o) => o.target === 'publish:').every((o) => o.result === 'old')).toBe(true);
  expect(outcomes.filter((o) => o.target === 'stage: catalogs' || o.target === 'catalog:').every((o) => o.result === 'old')).toBe(true);
  expect(outcomes.filter((o) => o.target === 'stage: reflog').every((o) => o.result === 'new')).toBe(true);
  expect(outcomes.some((o) => o.result === 'old')).toBe(true);
  expect(outcomes.some((o) => o.result === 'new')).toBe(true);
  // after all that, a normal publish still works and verifies
  makeSource(99);
  await publishTree(repo, path.join(dir, 'src-99'), 'img', { onProgress: () => {} });
  expect((await verifyRepository(repo)).ok).toBe(true);
  console.log(outcomes.map((o) => `${o.target}+${o.delay}ms -> ${o.result} (last: ${o.sawStage})`).join('\n'));
}, 400_000);
