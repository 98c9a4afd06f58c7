/**
 * Crash recovery without a second try (cvmfs-publish/abort.ts, lock.ts, base/pid-lock.ts): a
 * publisher SIGKILLed at a random point (50 times) is cleared by `abort`, the next publish succeeds
 * and `verify` is clean; a killed publisher left a zombie (its parent never reaps it) is known to be
 * gone; the next publish clears a dead holder's transaction by itself and says so; a lock whose pid
 * now belongs to another process is stale; a lock taken on another host is never assumed dead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abortTransaction, initRepository, openRepository, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { procStat } from '../../base/pid-lock.ts';
import { ROOT, gf, rmrf, tmpDir } from './helpers.ts';

const KILLS = 50;
const STEP_DELAY = 25; // ms per commit step (GRIDFORGE_TXN_STEP_DELAY_MS): a tiny publish then takes ~300 ms after its first line
const CHILD = path.join(ROOT, 'test/cvmfs-publish/crash-child.ts');
/** tiny trees: one compression worker and no scan threads start faster than the defaults (cvmfs-publish/README.md) */
const LEAN = { GRIDFORGE_COMPRESS_WORKERS: '1', GRIDFORGE_SCAN_THREADS: '0' };
const saved = Object.fromEntries(Object.keys(LEAN).map((k) => [k, process.env[k]]));
let dir: string;
let repo: string;

/** A tiny source tree whose `version` file says which run wrote it. */
function source(i: number): string {
  const src = path.join(dir, `src-${i}`);
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  for (let f = 0; f < 12; f++) fs.writeFileSync(path.join(src, 'd', `f${f}`), `run ${i} file ${f}\n`.repeat(1 + (f % 4)));
  fs.writeFileSync(path.join(src, 'version'), `v${i}\n`);
  return src;
}

async function servedVersion(): Promise<string> {
  return (await (await openRepository(repo)).readFile('img/version')).toString().trim();
}

function lockPath(): string {
  return path.join(repo, '.gridforge', 'lock');
}

/** Resolves with the child's stderr once a line starts with `prefix` (or when it exits). */
function waitForLine(child: ChildProcess, prefix: string, log: { text: string }): Promise<boolean> {
  return new Promise((resolve) => {
    child.stderr!.on('data', (b: Buffer) => {
      log.text += b.toString();
      if (log.text.split('\n').some((l) => l.startsWith(prefix))) resolve(true);
    });
    child.once('exit', () => resolve(false));
  });
}

async function expectCleanPublish(i: number, what: string): Promise<void> {
  const r = await publishTree(repo, source(i), 'img', { onProgress: () => {} });
  expect(r.revision, what).toBeGreaterThan(1);
  const v = await verifyRepository(repo);
  expect(v.problems, what).toEqual([]);
  expect(await servedVersion(), what).toBe(`v${i}`);
  expect(fs.existsSync(lockPath()), what).toBe(false);
}

beforeAll(async () => {
  Object.assign(process.env, LEAN); // for the publishes this test runs in-process, and the children it spawns
  dir = tmpDir('recover');
  repo = path.join(dir, 'repo');
  await initRepository(repo, { name: 'recover.example.org' });
  await publishTree(repo, source(0), 'img', { onProgress: () => {} });
});
afterAll(() => {
  rmrf(dir);
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
});

describe('crash recovery', () => {
  it(`${KILLS} publishers SIGKILLed at random points: abort, then the next publish succeeds and verifies`, async () => {
    let midTransaction = 0;
    for (let i = 1; i <= KILLS; i++) {
      const src = source(1000 + i);
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, repo, src, 'img'], {
        cwd: ROOT,
        env: { ...process.env, GRIDFORGE_TXN_STEP_DELAY_MS: String(STEP_DELAY) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const log = { text: '' };
      // one kill in five lands anywhere from start-up on (before or just after the lock is taken), the rest inside the publish
      if (i % 5 === 0) await new Promise((r) => setTimeout(r, Math.random() * 700));
      else if (await waitForLine(child, 'publish:', log)) await new Promise((r) => setTimeout(r, Math.random() * 12 * STEP_DELAY));
      child.kill('SIGKILL');
      await exited;
      const what = `kill ${i}\n${log.text}`;
      if (fs.existsSync(lockPath())) midTransaction++;
      const a = abortTransaction(repo);
      expect(a.hadLock, what).toBe(a.lockOwner !== undefined);
      await expectCleanPublish(i, what);
      rmrf(src);
      rmrf(path.join(dir, `src-${i}`));
    }
    expect(midTransaction, 'kills that left a transaction open').toBeGreaterThanOrEqual(KILLS / 2);
  }, 115_000);

  it('a killed publisher left a zombie (its parent never reaps it) is gone: abort clears it, and so does the next publish', async () => {
    for (const clearBy of ['abort', 'publish'] as const) {
      // bash starts the publisher, prints its pid, then becomes `sleep`, which never waits for children
      const parent = spawn('bash', ['-c', `"$0" --import tsx "$1" "$2" "$3" img >/dev/null & echo $!; exec sleep 60`, process.execPath, CHILD, repo, source(2000)], {
        cwd: ROOT,
        env: { ...process.env, GRIDFORGE_TXN_STEP_DELAY_MS: '300' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        const pid = Number((await new Promise<Buffer>((r) => parent.stdout!.once('data', r))).toString().trim());
        const log = { text: '' };
        expect(await waitForLine(parent, 'stage: catalogs', log), log.text).toBe(true);
        process.kill(pid, 'SIGKILL');
        const deadline = Date.now() + 5000;
        while (!/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /); // still there, a zombie
        expect(JSON.parse(fs.readFileSync(lockPath(), 'utf8')).pid).toBe(pid);
        if (clearBy === 'abort') expect(abortTransaction(repo).hadLock).toBe(true);
        await expectCleanPublish(clearBy === 'abort' ? 2001 : 2002, `zombie cleared by ${clearBy}`);
      } finally {
        parent.kill('SIGKILL');
      }
    }
  }, 30_000);

  it('the next `repo publish` without abort clears a killed publisher\'s transaction by itself and says so (stderr, --json)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, repo, source(3000), 'img'], {
      cwd: ROOT,
      env: { ...process.env, GRIDFORGE_TXN_STEP_DELAY_MS: '300' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const log = { text: '' };
    expect(await waitForLine(child, 'stage: whitelist', log), log.text).toBe(true);
    child.kill('SIGKILL');
    await exited;
    expect(fs.existsSync(lockPath())).toBe(true);
    const r = gf(['repo', 'publish', repo, source(3001), '--path', 'img', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`recovered: cleared the transaction of a publisher that is no longer running \\(publish img, pid ${child.pid} on `));
    const out = JSON.parse(r.stdout);
    expect(out.recovered).toMatchObject({ hadLock: true });
    expect(out.recovered.lockOwner).toContain(`pid ${child.pid}`);
    expect((await verifyRepository(repo)).problems).toEqual([]);
    expect(await servedVersion()).toBe('v3001');
  }, 30_000);

  it('a lock whose pid now belongs to another process is stale; an old unreadable lock too; one from another host never is', async () => {
    const start = procStat(process.pid)!.start; // field 22 of /proc/self/stat
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const write = (o: object) => fs.writeFileSync(lockPath(), JSON.stringify({ host: os.hostname(), started: '2026-01-01T00:00:00.000Z', operation: 'publish img', bootId, ...o }));
    // this process's pid, but recorded with another start time: the holder was an earlier process with the same pid
    write({ pid: process.pid, procStart: String(Number(start) - 1) });
    await expectCleanPublish(4000, 'reused pid');
    // the same pid and start time: alive, refused
    write({ pid: process.pid, procStart: start });
    await expect(publishTree(repo, source(4001), 'img', { onProgress: () => {} })).rejects.toThrow(/locked by another publisher/);
    expect(() => abortTransaction(repo)).toThrow(/still running/);
    // an empty lock (a publisher killed between creating and writing it): cleared once it is older than a few seconds
    fs.writeFileSync(lockPath(), '');
    await expect(publishTree(repo, source(4002), 'img', { onProgress: () => {} })).rejects.toThrow(/no longer running/);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lockPath(), old, old);
    await expectCleanPublish(4003, 'old empty lock');
    // another host: a dead-looking pid there proves nothing
    write({ pid: 999_999_999, host: 'other-host.example.org' });
    await expect(publishTree(repo, source(4004), 'img', { onProgress: () => {} })).rejects.toThrow(/locked by another publisher/);
    expect(() => abortTransaction(repo)).toThrow(/still running/);
    expect(abortTransaction(repo, { force: true }).hadLock).toBe(true);
    await expectCleanPublish(4005, 'after abort --force');
  }, 30_000);

  it('tag, rollback, resign, set-gc and gc clear a dead holder\'s lock by themselves too (no abort first)', () => {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const dead = () => fs.writeFileSync(lockPath(), JSON.stringify({ host: os.hostname(), pid: 999_999_999, procStart: '1', started: '2026-01-01T00:00:00.000Z', operation: 'publish img', bootId }));
    for (const args of [['repo', 'tag', repo, 'after-crash'], ['repo', 'rollback', repo, '--tag', 'after-crash'], ['repo', 'resign', repo], ['repo', 'set-gc', repo], ['repo', 'gc', repo]]) {
      dead();
      const r = gf(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toContain('recovered: cleared the transaction of a publisher that is no longer running (publish img, pid 999999999');
      expect(fs.existsSync(lockPath())).toBe(false);
    }
  }, 60_000);
});
