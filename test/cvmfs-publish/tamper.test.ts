/**
 * Tampering: a flipped byte in a file object, a catalog or the manifest, or an expired whitelist,
 * makes `verify` fail naming the exact path, and a reader going through `repo serve` refuses it.
 * Also the HTTP headers `serve` sends (what a cvmfs client and a squid expect).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, openRepository, publishTree, serveRepository, verifyRepository, type Server } from '../../cvmfs-publish/index.ts';
import { signWhitelist } from '../../cvmfs-publish/whitelist.ts';
import { CLI, gf, inflateObject, makeTree, manifestFields, rmrf, tmpDir } from './helpers.ts';

let dir: string;
let pristine: string;
const IMG = '/containers/fs/singularity/alma9';

beforeAll(async () => {
  dir = tmpDir('tamper');
  pristine = path.join(dir, 'pristine');
  await initRepository(pristine, { name: 'tamper.example.org', keysDir: path.join(dir, 'keys') });
  const src = path.join(dir, 'src');
  makeTree(src);
  await publishTree(pristine, src, IMG, { tag: 'v1', onProgress: () => {} });
});
afterAll(() => rmrf(dir));

let n = 0;
function copy(): string {
  const d = path.join(dir, `copy-${n++}`);
  execFileSync('cp', ['-a', pristine, d]);
  return d;
}

function flip(file: string, offset: number): void {
  fs.chmodSync(file, 0o644);
  const b = fs.readFileSync(file);
  b[offset] ^= 0x01;
  fs.writeFileSync(file, b);
}

async function viaServe<T>(repo: string, fn: (url: string) => Promise<T>): Promise<T> {
  const s: Server = await serveRepository(repo, { port: 0 });
  try {
    return await fn(s.url);
  } finally {
    await s.close();
  }
}

const pub = () => path.join(dir, 'keys', 'tamper.example.org.pub');

describe('tampering', () => {
  it('the pristine repository verifies and reads over HTTP', async () => {
    expect((await verifyRepository(pristine)).problems).toEqual([]);
    await viaServe(pristine, async (url) => {
      const r = await openRepository(url, { publicKey: pub() });
      expect((await r.readFile(`${IMG}/etc/os-release`)).toString()).toBe('NAME=a\n');
    });
  });

  it('flipped byte in a file object', async () => {
    const repo = copy();
    const h = (await (await openRepository(repo)).stat(`${IMG}/bin/random`))!.hash!;
    const rel = `data/${h.slice(0, 2)}/${h.slice(2)}`;
    flip(path.join(repo, rel), 100);
    const v = await verifyRepository(repo);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.where)).toContain(rel);
    expect(v.problems.find((p) => p.where === rel)!.problem).toMatch(/hash mismatch.*bin\/random/);
    await viaServe(repo, async (url) => {
      const r = await openRepository(url, { publicKey: pub() });
      await expect(r.readFile(`${IMG}/bin/random`)).rejects.toThrow(/refusing object/);
      expect((await r.readFile(`${IMG}/etc/os-release`)).toString()).toBe('NAME=a\n');
    });
  });

  it('flipped byte in a (nested) catalog', async () => {
    const repo = copy();
    const root = manifestFields(repo).C;
    const nested = execFileSync('sqlite3', [inflateObject(repo, root, 'C', path.join(dir, `${root}.db`)), 'select sha1 from nested_catalogs'], { encoding: 'utf8' }).trim();
    const rel = `data/${nested.slice(0, 2)}/${nested.slice(2)}C`;
    flip(path.join(repo, rel), 50);
    const v = await verifyRepository(repo);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.where)).toContain(rel);
    await viaServe(repo, async (url) => {
      const r = await openRepository(url, { publicKey: pub() });
      await expect(r.ls(IMG)).rejects.toThrow(new RegExp(rel));
    });
  });

  it('flipped byte in the manifest', async () => {
    const repo = copy();
    const file = path.join(repo, '.cvmfspublished');
    const raw = fs.readFileSync(file);
    flip(file, raw.indexOf('\nT') + 3); // a digit of the timestamp
    const v = await verifyRepository(repo);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.where)).toContain('.cvmfspublished');
    await viaServe(repo, async (url) => {
      await expect(openRepository(url, { publicKey: pub() })).rejects.toThrow(/\.cvmfspublished/);
    });
    // a flipped byte in the signature itself
    const repo2 = copy();
    const f2 = path.join(repo2, '.cvmfspublished');
    flip(f2, fs.statSync(f2).size - 5);
    expect((await verifyRepository(repo2)).problems.map((p) => p.problem).join()).toMatch(/signature/);
  });

  it('expired whitelist', async () => {
    const repo = copy();
    const f = path.join(repo, '.cvmfswhitelist');
    const fp = fs.readFileSync(f, 'utf8').split('\n')[3];
    const masterKey = createPrivateKey(fs.readFileSync(path.join(dir, 'keys', 'tamper.example.org.masterkey')));
    fs.writeFileSync(f, signWhitelist({ name: 'tamper.example.org', fingerprint: fp, masterKey, issued: new Date(Date.now() - 40 * 86400_000), expires: new Date(Date.now() - 10 * 86400_000) }));
    const v = await verifyRepository(repo);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([{ where: '.cvmfswhitelist', problem: expect.stringMatching(/^expired at/) }]);
    await viaServe(repo, async (url) => {
      await expect(openRepository(url, { publicKey: pub() })).rejects.toThrow(/whitelist.*expired/);
    });
    // the CLI exits 1 and prints the path
    const r = gf(['repo', 'verify', repo]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^\.cvmfswhitelist: expired at/m);
  });
});

describe('repo serve', () => {
  it('serves with cvmfs caching headers, HEAD, 404s, and hides gridforge state (CLI process)', async () => {
    const child = spawn(process.execPath, [CLI, 'repo', 'serve', pristine, '--port', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRIDFORGE_QUIET: '1' } });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('}')) resolve();
        });
        child.on('exit', () => reject(new Error(`serve exited early: ${out}`)));
      });
      const { url } = JSON.parse(out);
      const m = await fetch(`${url}/.cvmfspublished`);
      expect(m.status).toBe(200);
      expect(m.headers.get('cache-control')).toMatch(/max-age=61\b/);
      expect(Buffer.from(await m.arrayBuffer())).toEqual(fs.readFileSync(path.join(pristine, '.cvmfspublished')));
      const c = manifestFields(pristine).C;
      const o = await fetch(`${url}/data/${c.slice(0, 2)}/${c.slice(2)}C`);
      expect(o.status).toBe(200);
      expect(o.headers.get('cache-control')).toMatch(/max-age=259200\b/);
      expect(o.headers.get('content-type')).toBe('application/octet-stream');
      const h = await fetch(`${url}/.cvmfswhitelist`, { method: 'HEAD' });
      expect(h.status).toBe(200);
      expect(Number(h.headers.get('content-length'))).toBe(fs.statSync(path.join(pristine, '.cvmfswhitelist')).size);
      expect((await h.arrayBuffer()).byteLength).toBe(0);
      for (const p of ['/.gridforge/config.json', '/data/txn/x', '/../../etc/passwd', '/data/00/doesnotexist', `/data/${c.slice(0, 2)}/${'0'.repeat(38)}`]) {
        expect((await fetch(`${url}${p}`)).status, p).toBe(404);
      }
      expect((await fetch(`${url}/.cvmfspublished`, { method: 'POST' })).status).toBe(405);
      // a full read through the served URL (no keys dir: the public key is passed explicitly)
      const r = await openRepository(url, { publicKey: pub() });
      expect((await r.readFile(`${IMG}/ünïcødé`)).toString()).toBe('x\n');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
