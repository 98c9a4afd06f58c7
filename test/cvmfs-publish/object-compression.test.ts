/**
 * Object bytes: incompressible content becomes a zlib stream of stored blocks, everything else goes
 * through deflate. Checked with an independent inflater (python3 zlib), for the same object from
 * every path (file through the workers, buffer, stream), and in a published, verified repository.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, openRepository, openTransaction, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { StoredZlibStream, TAIL_PROBE_LIMIT, deflateChunked, deflateObject, isIncompressible, storedZlib } from '../../cvmfs-publish/object-compression.mjs';
import { ROOT, rmrf, tmpDir } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = tmpDir('objc');
});
afterAll(() => rmrf(dir));

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const text = (n: number) => Buffer.from('export PATH=/cvmfs/alice.cern.ch/bin:$PATH # JAliEn job agent\n'.repeat(Math.ceil(n / 60))).subarray(0, n);

/** Inflate with Python's zlib (not Node's): prints length and SHA-1 of the content. */
function pythonInflate(file: string): string {
  return execFileSync('python3', ['-c', 'import sys,zlib,hashlib; d=zlib.decompress(open(sys.argv[1],"rb").read()); print(len(d), hashlib.sha1(d).hexdigest())', file], { encoding: 'utf8' }).trim();
}

/** Split into chunks of random sizes up to `max` bytes. */
function chunked(b: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = 1 + Math.floor(Math.random() * max);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('stored zlib streams', () => {
  it('inflate to the content with an independent zlib, at every block boundary', () => {
    for (const n of [0, 1, 65534, 65535, 65536, 131070, 131071, 300_000, (16 << 20) + 7]) {
      const content = randomBytes(n);
      const z = storedZlib(content);
      expect(z.subarray(0, 2).toString('hex')).toBe('7801');
      const f = path.join(dir, `stored-${n}.z`);
      fs.writeFileSync(f, z);
      expect(pythonInflate(f)).toBe(`${n} ${sha1(content)}`);
      // overhead: 2 header + 4 Adler-32 + 5 per block of 65,535 bytes
      expect(z.length).toBe(n + 6 + 5 * Math.max(1, Math.ceil(n / 65535)));
    }
  });

  it('the stream gives the same bytes as the buffer however the input is chunked', async () => {
    for (const n of [0, 100, 65535, 65536, 200_000, 1_000_000]) {
      const content = randomBytes(n);
      const whole = storedZlib(content);
      for (const max of [1, 4096, 65535, 70_000, 1 << 20]) {
        const streamed = await buffer(Readable.from(n === 0 ? [] : chunked(content, Math.min(max, n))).pipe(new StoredZlibStream()));
        expect(streamed.equals(whole), `n=${n} max chunk=${max}`).toBe(true);
      }
    }
  });
});

describe('catalogs: deflate on every core', () => {
  it('one valid zlib stream (independent inflater), the same bytes every time, about the size of one-thread deflate', async () => {
    const catalogLike = Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.concat([randomBytes(20), text(300 + (i % 50))])));
    const a = await deflateChunked(catalogLike);
    const b = await deflateChunked(catalogLike);
    expect(a.equals(b)).toBe(true);
    const f = path.join(dir, 'chunked.z');
    fs.writeFileSync(f, a);
    expect(pythonInflate(f)).toBe(`${catalogLike.length} ${sha1(catalogLike)}`);
    const single = zlib.deflateSync(catalogLike).length;
    expect(a.length).toBeLessThan(single * 1.01);
    // at or below one chunk: plain deflate
    expect((await deflateChunked(text(1000))).equals(zlib.deflateSync(text(1000)))).toBe(true);
  });
});

describe('which content is stored', () => {
  it('random and already compressed content is stored; text, short content and a compressible end are deflated', () => {
    expect(isIncompressible(randomBytes(8192))).toBe(true);
    expect(isIncompressible(zlib.gzipSync(fs.readFileSync(path.join(ROOT, 'cvmfs-publish/transaction.ts'))))).toBe(true); // a .tar.gz, a ROOT basket
    expect(isIncompressible(text(8192))).toBe(false);
    expect(isIncompressible(randomBytes(1000))).toBe(false); // below the 1 KiB probe
    // compressed entries first, compressible index last (a jar's central directory)
    expect(isIncompressible(Buffer.concat([randomBytes(100_000), text(8192)]))).toBe(false);
    // above TAIL_PROBE_LIMIT only the start counts (such content is streamed)
    expect(isIncompressible(Buffer.concat([randomBytes(TAIL_PROBE_LIMIT), text(8192)]))).toBe(true);
  });

  it('deflateObject: stored blocks for random bytes (never larger than deflate + 5 bytes per 64 KiB), deflate for text', () => {
    const r = randomBytes(300_000);
    const stored = deflateObject(r);
    expect(stored.subarray(0, 2).toString('hex')).toBe('7801');
    expect(stored.length).toBeLessThanOrEqual(zlib.deflateSync(r).length + 5 * 5);
    const t = text(300_000);
    expect(deflateObject(t).equals(zlib.deflateSync(t))).toBe(true);
  });
});

describe('in a repository', () => {
  it('the same content gives the same object from a file, a buffer and a stream; verify and readers accept it', async () => {
    const repo = path.join(dir, 'repo');
    // chunk sizes above big.bin: this test is about one object per file (chunked files: chunking.test.ts)
    await initRepository(repo, { name: 'objc.example.org', chunking: { min: 64 << 20, avg: 128 << 20, max: 256 << 20 } });
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const random = randomBytes(150_000);
    const big = randomBytes(TAIL_PROBE_LIMIT + 70_000); // streamed by the worker and by putStream
    const words = text(50_000);
    fs.writeFileSync(path.join(src, 'random.bin'), random);
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'words.txt'), words);
    await publishTree(repo, src, 'sw/files', { onProgress: () => {} });

    const tx = openTransaction(repo, { onProgress: () => {} });
    const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
    await tx.putFile('sw/api/random-buffer', random, meta);
    await tx.putFile('sw/api/random-stream', Readable.from(chunked(random, 10_000)), meta);
    await tx.putFile('sw/api/big-stream', Readable.from(chunked(big, 1 << 20)), meta);
    await tx.putFile('sw/api/words-stream', Readable.from(chunked(words, 3000)), meta);
    await tx.commit({});

    const r = await openRepository(repo);
    const hash = async (p: string) => (await r.stat(p))!.hash!;
    expect(await hash('sw/api/random-buffer')).toBe(await hash('sw/files/random.bin'));
    expect(await hash('sw/api/random-stream')).toBe(await hash('sw/files/random.bin'));
    expect(await hash('sw/api/big-stream')).toBe(await hash('sw/files/big.bin'));
    expect(await hash('sw/api/words-stream')).toBe(await hash('sw/files/words.txt'));
    const objectFile = async (p: string) => {
      const h = await hash(p);
      return path.join(repo, 'data', h.slice(0, 2), h.slice(2));
    };
    const head = async (p: string) => fs.readFileSync(await objectFile(p)).subarray(0, 2).toString('hex');
    expect(await head('sw/files/random.bin')).toBe('7801');
    expect(await head('sw/files/big.bin')).toBe('7801');
    expect(await head('sw/files/words.txt')).toBe('789c');
    expect(pythonInflate(await objectFile('sw/files/big.bin'))).toBe(`${big.length} ${sha1(big)}`);
    expect((await r.readFile('sw/files/random.bin')).equals(random)).toBe(true);
    expect((await verifyRepository(repo)).ok).toBe(true);
  });

  it('GRIDFORGE_STORE_INCOMPRESSIBLE=0 deflates every object', async () => {
    const repo = path.join(dir, 'repo-off');
    await initRepository(repo, { name: 'objc.example.org' });
    const src = path.join(dir, 'src-off');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'random.bin'), randomBytes(20_000));
    process.env.GRIDFORGE_STORE_INCOMPRESSIBLE = '0';
    try {
      await publishTree(repo, src, 'sw/off', { onProgress: () => {} });
    } finally {
      delete process.env.GRIDFORGE_STORE_INCOMPRESSIBLE;
    }
    const h = (await (await openRepository(repo)).stat('sw/off/random.bin'))!.hash!;
    expect(fs.readFileSync(path.join(repo, 'data', h.slice(0, 2), h.slice(2))).subarray(0, 2).toString('hex')).toBe('789c');
  });
});
