/**
 * Publishing a tree someone else can write to, as root: entries swapped for symlinks to a root-only
 * file, for FIFOs or removed between the scan and the read must be refused (exit 2, the repository
 * as before, lock released), never followed, published or hung on; bad `--path` values are refused
 * before anything is written. See cvmfs-publish/compress-worker.mjs and source-listing.mjs.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, publishTree } from '../../cvmfs-publish/index.ts';
import { UsageError } from '../../base/errors.ts';
import { CLI, gf, rmrf, tmpDir } from './helpers.ts';

let dir: string;
let secretDir: string;
let secret: string;
const MARK = `TOPSECRET-${randomBytes(8).toString('hex')}`;
const quiet = { onProgress: () => {} };

beforeAll(() => {
  dir = tmpDir('hostile');
  secretDir = path.join(dir, 'root-only');
  fs.mkdirSync(secretDir, { mode: 0o700 });
  secret = path.join(secretDir, 'shadow');
  fs.writeFileSync(secret, `${MARK}\n`.repeat(20), { mode: 0o600 });
});
afterAll(() => rmrf(dir));

async function newRepo(name: string): Promise<string> {
  const r = path.join(dir, name);
  await initRepository(r, { name: `${name}.example.org` });
  return r;
}

/** Every object's path (data/ as a listing) and the manifest: what must not change on a refusal. */
function state(r: string): string {
  const objects = execFileSync('find', ['data', '-type', 'f'], { cwd: r, encoding: 'utf8' }).split('\n').sort().join('\n');
  return `${fs.readFileSync(path.join(r, '.cvmfspublished')).toString('latin1')}\n${objects}`;
}

/** Does any object of the repository hold the secret's bytes? */
function secretPublished(r: string): boolean {
  for (const sub of fs.readdirSync(path.join(r, 'data'))) {
    const d = path.join(r, 'data', sub);
    if (!fs.statSync(d).isDirectory()) continue;
    for (const f of fs.readdirSync(d)) {
      const bytes = fs.readFileSync(path.join(d, f));
      let plain: Buffer;
      try {
        plain = zlib.inflateSync(bytes);
      } catch {
        plain = bytes;
      }
      if (plain.includes(MARK)) return true;
    }
  }
  return false;
}

function makeSource(src: string, dirs: number, files: number): void {
  for (let d = 0; d < dirs; d++) {
    fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < files; f++) fs.writeFileSync(path.join(src, `d${d}`, `f${f}`), `content ${d}/${f} ${randomBytes(8).toString('hex')}\n`.repeat(8));
  }
}

describe('entries swapped after the scan (deterministic: swapped when the scan is done, before any file is read)', () => {
  // the scan of a small tree runs to its end before the pool reads a file; putTree's progress line comes in between
  const swapAfterScan = (swap: () => void) => ({ onProgress: (m: string) => m.startsWith('publish:') && swap() });

  it('a file swapped for a symlink to a root-only file is refused (exit 2 naming it), the secret not stored', async () => {
    const r = await newRepo('swap-link');
    const src = path.join(dir, 'src-link');
    makeSource(src, 3, 5);
    const before = state(r);
    const victim = path.join(src, 'd1', 'f2');
    const err = await publishTree(r, src, 'sw/x', swapAfterScan(() => {
      fs.rmSync(victim);
      fs.symlinkSync(secret, victim);
    })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).where).toBe(victim);
    expect((err as UsageError).message).toMatch(/changed while being published/);
    expect((err as UsageError).hint).toMatch(/nobody else/);
    expect(secretPublished(r)).toBe(false);
    expect(state(r)).toBe(before);
    expect(fs.readdirSync(path.join(r, 'data', 'txn'))).toEqual([]);
  });

  it('a file swapped for a FIFO is refused at once (no hang), the lock released', async () => {
    const r = await newRepo('swap-fifo');
    const src = path.join(dir, 'src-fifo');
    makeSource(src, 2, 4);
    const before = state(r);
    const victim = path.join(src, 'd0', 'f1');
    const err = await publishTree(r, src, 'sw/x', swapAfterScan(() => {
      fs.rmSync(victim);
      execFileSync('mkfifo', [victim]);
    })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).where).toBe(victim);
    expect(state(r)).toBe(before);
    fs.rmSync(victim);
    fs.writeFileSync(victim, 'back\n');
    expect((await publishTree(r, src, 'sw/x', quiet)).revision).toBe(2); // the lock was released
  }, 30_000);

  it('a directory swapped for a symlink to a root-only directory is not followed', async () => {
    const r = await newRepo('swap-dir');
    const src = path.join(dir, 'src-dir');
    makeSource(src, 2, 3);
    // same names as in the swapped directory: a path-based read would find the secret there
    const evil = path.join(dir, 'root-only-dir');
    fs.mkdirSync(evil, { mode: 0o700 });
    for (let f = 0; f < 3; f++) fs.copyFileSync(secret, path.join(evil, `f${f}`));
    const before = state(r);
    const victim = path.join(src, 'd1');
    const err = await publishTree(r, src, 'sw/x', swapAfterScan(() => {
      fs.renameSync(victim, `${victim}.away`);
      fs.symlinkSync(evil, victim);
    })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).where).toMatch(/d1\/f\d$/);
    expect((err as UsageError).message).toMatch(/changed while being published/);
    expect(secretPublished(r)).toBe(false);
    expect(state(r)).toBe(before);
  });

  it('a file that disappears before it is read: the publish fails, data/ exactly as before, data/txn empty', async () => {
    const r = await newRepo('vanish');
    const src = path.join(dir, 'src-vanish');
    makeSource(src, 4, 30); // 120 files with unique content: objects the failed publish must remove again
    fs.writeFileSync(path.join(src, 'big'), randomBytes(40 << 20)); // streamed: its temp file must go too
    const before = state(r);
    const victim = path.join(src, 'd3', 'f29');
    const err = await publishTree(r, src, 'sw/x', swapAfterScan(() => fs.rmSync(victim))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(`${(err as UsageError).where}: ${(err as Error).message}`).toMatch(/d3\/f29/);
    expect(state(r)).toBe(before);
    expect(fs.readdirSync(path.join(r, 'data', 'txn'))).toEqual([]);
    // and the same through the CLI: exit 2, nothing left behind
    fs.writeFileSync(victim, 'back\n');
    expect(gf(['repo', 'publish', r, src, '--path', 'sw/x']).code).toBe(0);
  }, 60_000);
});

describe('the swap race against a running `repo publish`', () => {
  it('symlinks to a root-only file and a FIFO swapped in and out: every publish succeeds without the secret or fails with exit 2 naming the file; never hangs', async () => {
    const r = await newRepo('race');
    const src = path.join(dir, 'src-race');
    makeSource(src, 20, 100);
    const victims = Array.from({ length: 40 }, (_, i) => path.join(src, `d${i % 20}`, `f${(i * 37) % 100}`));
    const fifo = path.join(dir, 'race.fifo');
    execFileSync('mkfifo', [fifo]);
    const fifoVictim = path.join(src, 'd7', 'f50');
    const started = Date.now();
    const outcomes: number[] = [];
    for (let attempt = 0; attempt < 30 && Date.now() - started < 60_000; attempt++) {
      // every file is read again (the scan cache would skip unchanged ones)
      fs.rmSync(path.join(r, '.gridforge', 'scan-cache.bin'), { force: true });
      const child = spawn(process.execPath, [CLI, 'repo', 'publish', r, src, '--path', `sw/race${attempt % 3}`], { env: { ...process.env, GRIDFORGE_QUIET: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      let code: number | null | undefined;
      child.on('exit', (c) => (code = c));
      const killAt = Date.now() + 30_000;
      while (code === undefined) {
        if (Date.now() > killAt) {
          child.kill('SIGKILL');
          throw new Error(`repo publish hung (attempt ${attempt})`);
        }
        for (const v of victims) {
          fs.renameSync(v, `${v}.real`);
          fs.symlinkSync(secret, v);
        }
        fs.renameSync(fifoVictim, `${fifoVictim}.real`);
        fs.renameSync(fifo, fifoVictim);
        await new Promise((res) => setImmediate(res));
        for (const v of victims) fs.renameSync(`${v}.real`, v); // replaces the symlink
        fs.renameSync(fifoVictim, fifo);
        fs.renameSync(`${fifoVictim}.real`, fifoVictim);
        await new Promise((res) => setTimeout(res, 1));
      }
      outcomes.push(code ?? -1);
      expect([0, 2], stderr).toContain(code);
      if (code === 2) expect(stderr).toMatch(new RegExp(`${src}/d\\d+/f\\d+.*(changed while being published|the source changed during the scan)`));
      expect(secretPublished(r)).toBe(false);
      if (code === 2 && outcomes.filter((c) => c === 2).length >= 3) break; // the swap won enough times
    }
    expect(outcomes.filter((c) => c === 2).length, `outcomes: ${outcomes.join(' ')}`).toBeGreaterThan(0);
    // the lock is free and the tree publishes once nobody swaps
    const last = gf(['repo', 'publish', r, src, '--path', 'sw/final', '--json']);
    expect(last.code, last.stderr).toBe(0);
    const cat = gf(['repo', 'cat', r, `/sw/final/d7/f50`]);
    expect(cat.stdout).toBe(fs.readFileSync(fifoVictim, 'utf8'));
    expect(secretPublished(r)).toBe(false);
    expect(gf(['repo', 'verify', r]).code).toBe(0);
  }, 180_000);
});

describe('repo publish --path', () => {
  it('refuses a newline, .cvmfscatalog, "..", ".", empty components and NUL-free garbage, naming the component; the repository unchanged', async () => {
    const r = await newRepo('badpath');
    const src = path.join(dir, 'src-path');
    makeSource(src, 1, 2);
    const before = state(r);
    for (const [p, component] of [
      ['sw/a\nb', 'a\\nb'],
      ['sw/.cvmfscatalog', '.cvmfscatalog'],
      ['.cvmfscatalog/x', '.cvmfscatalog'],
      ['sw/../../etc', '..'],
      ['sw/./x', '.'],
      ['sw//x', '""'],
      ['sw/\uFFFDx', '\uFFFDx'],
    ]) {
      const res = gf(['repo', 'publish', r, src, '--path', p]);
      expect(res.code, `${JSON.stringify(p)}: ${res.stderr}`).toBe(2);
      expect(res.stderr).toContain(component);
      expect(state(r)).toBe(before);
      expect(fs.existsSync(path.join(r, '.gridforge', 'lock'))).toBe(false);
    }
    await expect(publishTree(r, src, 'sw/x\0y', quiet)).rejects.toThrow(/NUL/);
    await expect(publishTree(r, src, 'sw/x\uD800', quiet)).rejects.toThrow(/not valid UTF-8/);
    expect(state(r)).toBe(before);
    expect(gf(['repo', 'publish', r, src, '--path', '/sw/fine/']).code).toBe(0);
  }, 60_000);
});
