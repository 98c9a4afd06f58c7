/**
 * File chunking (cvmfs-publish/chunk-*.{mjs,ts}): cut points identical to cvmfs_server's
 * Xor32Detector (cvmfs/ingestion/chunk_detector.cc), chunked files in the catalog as cvmfs writes
 * them (flag 68, NULL hash, `chunks` rows, counters), read back by the reader and checkout, kept
 * by gc, checked by verify, and a republish after a small edit storing only the chunks around it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutPoints, nextCut, thresholdOf, DEFAULT_CHUNKING } from '../../cvmfs-publish/chunk-detector.mjs';
import { Readable } from 'node:stream';
import { checkout, garbageCollect, initRepository, openRepository, openTransaction, publishTree, serveRepository, verifyRepository } from '../../cvmfs-publish/index.ts';
import { readHead } from '../../cvmfs-publish/repository.ts';
import { gf, rmrf, tmpDir } from './helpers.ts';

/** Deterministic mixed content: random bytes, text, runs of 0x01 (xor32 = 0xffffffff: abs(INT32_MIN) cuts), a ramp. */
function mixedContent(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  let at = 0;
  let seg = 0;
  while (at < size) {
    const len = Math.min(size - at, 262144 + (rnd() % 3000000));
    const kind = seg++ % 4;
    if (kind === 0) for (let i = 0; i < len; i++) out[at + i] = rnd() & 0xff;
    else if (kind === 1) {
      const line = Buffer.from(`value ${rnd()} of segment ${seg}\n`);
      for (let i = 0; i < len; i++) out[at + i] = line[i % line.length];
    } else if (kind === 2) out.fill(1, at, at + len);
    else for (let i = 0; i < len; i++) out[at + i] = (i * 31 + (i >> 9)) & 0xff;
    at += len;
  }
  return out;
}

/**
 * Cut points printed by cvmfs's own chunk_detector.cc (github.com/cvmfs/cvmfs, built standalone with
 * cvmfs's flags `-Os -fwrapv`, fed mixedContent(size, 7) in 1 MiB blocks through FindNextCutMark,
 * as task_chunk.cc does); the file's end is the last cut.
 */
const CVMFS_CUTS: { size: number; params: [number, number, number]; sha256: string; cuts: number[] }[] = [
  {
    size: 6 << 20,
    params: [65536, 131072, 262144],
    sha256: 'a43aa90670d5ae98',
    cuts: [80716, 177800, 389553, 497613, 575898, 646012, 737200, 852017, 933842, 1001060, 1070137, 1144042, 1314604, 1413470, 1614401, 1697666, 1774230, 1971516, 2078017, 2340161, 2602305, 2864449, 3126593, 3388737, 3650881, 3913025, 4175169, 4437313, 4699457, 4887728, 4953264, 5018800, 5084336, 5149872, 5215408, 5280944, 5346480, 5412016, 5674160, 5936304, 6198448],
  },
  { size: 40 << 20, params: [4194304, 8388608, 16777216], sha256: 'e964d69bd0a4c489', cuts: [4887728, 11713194, 22901776, 29637128, 33831432, 38025736] },
];

/** The detector written the plain way, byte by byte as chunk_detector.cc reads: the reference for random input. */
function plainCuts(data: Uint8Array, min: number, avg: number, max: number): number[] {
  const threshold = Math.floor(0xffffffff / avg);
  const cuts: number[] = [];
  if (data.length <= min) return [data.length];
  let last = 0;
  while (last < data.length) {
    let x = 0;
    let cut = -1;
    for (let p = last + min - 32; p < Math.min(last + max, data.length); p++) {
      x = ((x << 1) ^ data[p]) >>> 0; // uint32
      if (p < last + min) continue;
      const signed = x > 0x7fffffff ? x - 2 ** 32 : x;
      let d = signed - 0x7fffffff; // int32 subtraction, wrapped as with -fwrapv
      if (d < -(2 ** 31)) d += 2 ** 32;
      const abs = d === -(2 ** 31) ? d : Math.abs(d); // abs(INT32_MIN) stays INT32_MIN
      if (abs < threshold) {
        cut = p;
        break;
      }
    }
    if (cut < 0) cut = Math.min(last + max, data.length);
    cuts.push(cut);
    last = cut;
  }
  return cuts;
}

describe('chunk detector', () => {
  it('gives the cut points of cvmfs_server (cvmfs chunk_detector.cc compiled, known answers)', () => {
    for (const k of CVMFS_CUTS) {
      const data = mixedContent(k.size, 7);
      expect(crypto.createHash('sha256').update(data).digest('hex').slice(0, 16)).toBe(k.sha256);
      const [min, avg, max] = k.params;
      expect(cutPoints(data, { min, avg, max }).filter((c) => c < k.size)).toEqual(k.cuts);
    }
  });

  it('agrees with a plain reimplementation on random and crafted content', () => {
    const random = crypto.randomBytes(12 << 20);
    const crafted = Buffer.concat([random.subarray(0, 1 << 20), Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 0xff), random.subarray(1 << 20, 3 << 20)]);
    for (const data of [random, crafted]) {
      for (const [min, avg, max] of [[4096, 8192, 16384], [32, 100, 333], [65536, 131072, 262144]]) {
        expect(cutPoints(data, { min, avg, max })).toEqual(plainCuts(data, min, avg, max));
      }
    }
  });

  it('cuts a 1 GiB stream into chunks within the default bounds, at >= 300 MB/s of detector CPU time', () => {
    const { min, avg, max } = DEFAULT_CHUNKING;
    const threshold = thresholdOf(avg);
    const block = crypto.randomBytes(64 << 20);
    const text = Buffer.alloc(64 << 20);
    text.fill('ATLAS event 1234567 run 42 lumi 7 weight 0.25\n');
    const total = 1 << 30;
    // the stream: 64 MiB blocks of random bytes or text (every third), each block made different; a window of up to max bytes per chunk
    const sizes: number[] = [];
    let detectMs = 0;
    let scanned = 0;
    const win = Buffer.allocUnsafe(max);
    for (let start = 0; start < total; ) {
      const len = Math.min(max, total - start);
      for (let off = 0; off < len; ) {
        // copy whole runs from the source blocks (fast), XOR-ing positions as byteAt does
        const pos = start + off;
        const src = (pos >> 26) % 3 === 2 ? text : block;
        const n = Math.min(len - off, (64 << 20) - (pos & ((64 << 20) - 1)));
        src.copy(win, off, pos & ((64 << 20) - 1), (pos & ((64 << 20) - 1)) + n);
        const k = (pos >> 26) & 0xff;
        if (k !== 0) for (let i = 0; i < n; i += 4096) win[off + i] ^= k; // blocks differ from each other
        off += n;
      }
      const t = process.cpuUsage(); // CPU time: the shared machine's load must not count
      const cut = nextCut(win, len, min, max, threshold);
      const used = process.cpuUsage(t);
      detectMs += (used.user + used.system) / 1000;
      scanned += Math.max(0, cut - min + 32);
      sizes.push(cut);
      start += cut;
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    for (const s of sizes.slice(0, -1)) {
      expect(s).toBeGreaterThanOrEqual(min);
      expect(s).toBeLessThanOrEqual(max);
    }
    const mbps = scanned / 1e6 / (detectMs / 1000);
    console.log(`detector: ${sizes.length} chunks of a 1 GiB stream, ${(scanned / 1e6).toFixed(0)} MB scanned in ${detectMs.toFixed(0)} ms of CPU: ${mbps.toFixed(0)} MB/s per core`);
    expect(sizes.length).toBeGreaterThan(1024 / 16);
    expect(mbps).toBeGreaterThan(300);
  });
});

describe('chunked files in a repository', () => {
  let dir: string;
  let repo: string;
  let src: string;
  const bigPath = 'sw/v1/data/big.bin';
  /** The large file: 1 GiB of mixed content (random, text and structured segments), as the chunking check asks. */
  const BIG = 1 << 30;
  let big: Buffer;
  let first: { offset: number; size: number; hash: string }[];

  /** The catalog (decompressed, opened with better-sqlite3) holding a repository path. */
  function catalogOf(p: string): Database.Database {
    const { manifest } = readHead(repo);
    let hash = manifest.rootHash;
    for (;;) {
      const db = new Database(zlib.inflateSync(fs.readFileSync(path.join(repo, 'data', hash.slice(0, 2), `${hash.slice(2)}C`))), { readonly: true });
      const nested = (db.prepare('SELECT path, sha1 FROM nested_catalogs').all() as { path: string; sha1: string }[]).find((n) => `/${p}`.startsWith(`${n.path}/`));
      if (!nested) return db;
      db.close();
      hash = nested.sha1;
    }
  }

  beforeAll(async () => {
    dir = tmpDir('chunking');
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'data'), { recursive: true });
    // random, text and structured segments, so chunks are cut by content, by max, and deflated or stored
    const rnd = crypto.randomBytes(BIG / 4);
    big = Buffer.concat([rnd.subarray(0, BIG / 8), mixedContent(BIG / 2, 3), rnd.subarray(BIG / 8), mixedContent(BIG / 8, 5), Buffer.from('tail')]);
    fs.writeFileSync(path.join(src, 'data', 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'data', 'small.txt'), 'small\n');
    fs.writeFileSync(path.join(src, 'data', 'medium.bin'), crypto.randomBytes(3 << 20)); // below the minimum: one object
    fs.writeFileSync(path.join(src, 'data', 'one-piece.txt'), Buffer.alloc(6 << 20, 'abc\n')); // above min, no cut before its end: one object
    await initRepository(repo, { name: 'chunks.example.org', garbageCollectable: true } as Parameters<typeof initRepository>[1]);
    await publishTree(repo, src, 'sw/v1', { tag: 'first' });
  }, 120_000);

  afterAll(() => rmrf(dir));

  it('stores the large file as chunks within the bounds: flag 68, NULL hash, chunks rows, P objects, counters', () => {
    const db = catalogOf(bigPath);
    try {
      const row = db.prepare("SELECT flags, hash, size, md5path_1, md5path_2 FROM catalog WHERE name = 'big.bin'").safeIntegers(true).get() as { flags: bigint; hash: Buffer | null; size: bigint; md5path_1: bigint; md5path_2: bigint };
      expect(Number(row.flags)).toBe(68);
      expect(row.hash).toBeNull();
      expect(Number(row.size)).toBe(big.length);
      const chunks = (db.prepare('SELECT offset, size, hash FROM chunks WHERE md5path_1 = ? AND md5path_2 = ? ORDER BY offset').safeIntegers(true).all(row.md5path_1, row.md5path_2) as { offset: bigint; size: bigint; hash: Buffer }[]).map((c) => ({ offset: Number(c.offset), size: Number(c.size), hash: c.hash.toString('hex') }));
      first = chunks;
      let at = 0;
      chunks.forEach((c, i) => {
        expect(c.offset).toBe(at);
        expect(c.size).toBeLessThanOrEqual(DEFAULT_CHUNKING.max);
        if (i < chunks.length - 1) expect(c.size).toBeGreaterThanOrEqual(DEFAULT_CHUNKING.min);
        expect(fs.existsSync(path.join(repo, 'data', c.hash.slice(0, 2), `${c.hash.slice(2)}P`))).toBe(true);
        at += c.size;
      });
      expect(at).toBe(big.length);
      // the cut points are the detector's (what cvmfs_server would cut)
      expect(chunks.map((c) => c.offset + c.size)).toEqual(cutPoints(big, DEFAULT_CHUNKING));
      // files that are not chunked: below the minimum, or one piece
      for (const name of ['small.txt', 'medium.bin', 'one-piece.txt']) expect(Number(db.prepare('SELECT flags FROM catalog WHERE name = ?').pluck().get(name))).toBe(4);
      const stat = Object.fromEntries((db.prepare("SELECT counter, value FROM statistics WHERE counter LIKE 'self_chunk%'").all() as { counter: string; value: number }[]).map((r) => [r.counter, r.value]));
      expect(stat).toEqual({ self_chunked: 1, self_chunked_size: big.length, self_chunks: chunks.length });
    } finally {
      db.close();
    }
    const root = catalogOf('');
    try {
      expect(Number(root.prepare("SELECT value FROM statistics WHERE counter = 'subtree_chunks'").pluck().get())).toBe(first.length);
    } finally {
      root.close();
    }
  });

  it('reads back identical bytes through the reader (from the directory and over `repo serve`) and checkout', async () => {
    const r = await openRepository(repo);
    expect(sha256(await r.readFile(bigPath))).toBe(sha256(big));
    const served = await serveRepository(repo, { port: 0 });
    try {
      const overHttp = await openRepository(served.url, { publicKey: path.join(`${repo}.keys`, 'chunks.example.org.pub') });
      expect(sha256(await overHttp.readFile(bigPath))).toBe(sha256(big)); // every P object served
    } finally {
      await served.close();
    }
    const out = path.join(dir, 'co');
    await checkout(repo, out, { path: 'sw/v1' });
    expect(sha256(fs.readFileSync(path.join(out, 'data', 'big.bin')))).toBe(sha256(big));
    rmrf(out);
  }, 60_000);

  it('a 1 MiB edit in the middle stores at most 4 new chunks; verify is clean, gc keeps the chunks, diff sees the change', async () => {
    const mid = Math.floor(big.length / 2);
    crypto.randomFillSync(big, mid, 1 << 20);
    fs.writeFileSync(path.join(src, 'data', 'big.bin'), big);
    const r = await publishTree(repo, src, 'sw/v1', { tag: 'second' });
    expect(r.filesStored).toBe(1);
    const reader = await openRepository(repo);
    const st = await reader.stat(bigPath);
    const before = new Set(first.map((c) => c.hash));
    const fresh = st!.chunks!.filter((c) => !before.has(c.hash));
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.length).toBeLessThanOrEqual(4);
    expect(st!.chunks!.map((c) => c.offset + c.size)).toEqual(cutPoints(big, DEFAULT_CHUNKING));
    expect(sha256(await reader.readFile(bigPath))).toBe(sha256(big));
    const v = await verifyRepository(repo);
    expect(v.problems).toEqual([]);
    const { diffTags } = await import('../../cvmfs-publish/index.ts');
    expect(await diffTags(repo, 'first', 'second')).toEqual([{ path: `/${bigPath}`, change: 'modified', what: 'content' }]);
    // gc with only the newest revision kept: the current chunks stay, the replaced ones go
    await garbageCollect(repo, { keepRevisions: 1 });
    for (const c of st!.chunks!) expect(fs.existsSync(path.join(repo, 'data', c.hash.slice(0, 2), `${c.hash.slice(2)}P`))).toBe(true);
    expect(sha256(await (await openRepository(repo)).readFile(bigPath))).toBe(sha256(big));
  }, 90_000);

  it('verify finds a tampered chunk object', async () => {
    const reader = await openRepository(repo);
    const c = (await reader.stat(bigPath))!.chunks![3];
    const file = path.join(repo, 'data', c.hash.slice(0, 2), `${c.hash.slice(2)}P`);
    const saved = fs.readFileSync(file);
    try {
      fs.writeFileSync(file, zlib.deflateSync(Buffer.alloc(c.size, 0x55)));
      const v = await verifyRepository(repo);
      expect(v.ok).toBe(false);
      expect(v.problems.map((p) => p.where)).toContain(`data/${c.hash.slice(0, 2)}/${c.hash.slice(2)}P`);
    } finally {
      fs.writeFileSync(file, saved);
    }
  }, 60_000);
});

describe('chunk sizes of a repository', () => {
  it('repo init records them in .gridforge/config.json; unusable ones are refused (exit 2, nothing written)', () => {
    const dir = tmpDir('chunk-config');
    try {
      const ok = gf(['repo', 'init', path.join(dir, 'a'), '--name', 'a.example.org', '--min-chunk-size', '65536', '--avg-chunk-size', '131072', '--max-chunk-size', '262144', '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'a', '.gridforge', 'config.json'), 'utf8'));
      expect(cfg.chunking).toEqual({ min: 65536, avg: 131072, max: 262144 });
      expect(cfg.maxFileSize).toBe(1024 * 1024 * 1024);
      const bad = gf(['repo', 'init', path.join(dir, 'b'), '--name', 'b.example.org', '--min-chunk-size', '200000', '--avg-chunk-size', '131072']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/chunk sizes min 200000, avg 131072/);
      expect(fs.existsSync(path.join(dir, 'b'))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'b.keys'))).toBe(false);
    } finally {
      rmrf(dir);
    }
  });
});

describe('a changed chunk list in a catalog written by patching its previous version', () => {
  it('is a changed row: the chunks rows follow the new list (same size and mtime, other bytes)', async () => {
    const dir = tmpDir('chunk-patch');
    try {
      const repo = path.join(dir, 'repo');
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      // 2,100 rows: catalogs of 2,048 rows or more keep a row image and are patched (catalog-image-store.ts)
      for (let i = 0; i < 2100; i++) fs.writeFileSync(path.join(src, `f${i}.txt`), `${i}\n`);
      const file = path.join(src, 'big.bin');
      const big = mixedContent(3 << 20, 11);
      fs.writeFileSync(file, big);
      const mtime = new Date('2024-01-02T03:04:05Z');
      fs.utimesSync(file, mtime, mtime);
      await initRepository(repo, { name: 'patch.example.org', chunking: { min: 65536, avg: 131072, max: 262144 } });
      await publishTree(repo, src, 'sw');
      crypto.randomFillSync(big, 1 << 20, 4096); // same size
      fs.writeFileSync(file, big);
      fs.utimesSync(file, mtime, mtime); // same mtime: only the chunk list tells the rows apart
      const r = await publishTree(repo, src, 'sw');
      expect(r.catalogsPatched).toBeGreaterThan(0);
      const reader = await openRepository(repo);
      expect(sha256(await reader.readFile('sw/big.bin'))).toBe(sha256(big));
      expect((await reader.stat('sw/big.bin'))!.chunks!.map((c) => c.offset + c.size)).toEqual(cutPoints(big, { min: 65536, avg: 131072, max: 262144 }));
      expect((await verifyRepository(repo)).problems).toEqual([]);
    } finally {
      rmrf(dir);
    }
  }, 60_000);
});

describe('every way into a transaction chunks', () => {
  it('putFileRange (image sandbox --repo), putFile with a Buffer and with a Readable give the chunks a tree file gets', async () => {
    const dir = tmpDir('chunk-api');
    try {
      const repo = path.join(dir, 'repo');
      const params = { min: 65536, avg: 131072, max: 262144 };
      await initRepository(repo, { name: 'api.example.org', chunking: params });
      const content = mixedContent(3 << 20, 21);
      const blob = path.join(dir, 'layer.blob');
      fs.writeFileSync(blob, Buffer.concat([Buffer.from('header of the blob'), content, Buffer.from('trailer')]));
      fs.mkdirSync(path.join(dir, 'src'));
      fs.writeFileSync(path.join(dir, 'src', 'tree.bin'), content);
      await publishTree(repo, path.join(dir, 'src'), 'tree');
      const tx = openTransaction(repo, { onProgress: () => {} });
      const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
      await tx.putFileRange('api/range.bin', blob, 18, content.length, meta);
      await tx.putFile('api/buffer.bin', content, meta);
      await tx.putFile('api/stream.bin', Readable.from((function* () {
        for (let at = 0; at < content.length; at += 100_000) yield content.subarray(at, at + 100_000);
      })()), meta);
      await tx.commit({});
      const r = await openRepository(repo);
      const expected = (await r.stat('tree/tree.bin'))!.chunks!;
      expect(expected.map((c) => c.offset + c.size)).toEqual(cutPoints(content, params));
      for (const p of ['api/range.bin', 'api/buffer.bin', 'api/stream.bin']) {
        const st = (await r.stat(p))!;
        expect(st.hash, p).toBeUndefined();
        expect(st.chunks!.map((c) => [c.offset, c.size, c.hash]), p).toEqual(expected.map((c) => [c.offset, c.size, c.hash]));
        expect(sha256(await r.readFile(p)), p).toBe(sha256(content));
      }
      expect((await verifyRepository(repo)).problems).toEqual([]);
      expect(fs.readdirSync(path.join(repo, 'data', 'txn'))).toEqual([]); // the stream's temp file is gone
    } finally {
      rmrf(dir);
    }
  }, 60_000);
});

function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

describe('the chunk key: unchanged chunks known by a keyed digest', () => {
  const params = { min: 1 << 20, avg: 2 << 20, max: 4 << 20 };
  let dir: string;
  let repo: string;
  let src: string;
  let data: Buffer;
  const file = () => path.join(src, 'f.bin');
  const stateFile = (name: string) => path.join(repo, '.gridforge', name);
  const objectOf = (hash: string) => path.join(repo, 'data', hash.slice(0, 2), `${hash.slice(2)}P`);
  const chunksOf = async () => (await (await openRepository(repo)).stat('sw/f.bin'))!.chunks!;
  const edit = () => {
    crypto.randomFillSync(data, (data.length >> 1) + crypto.randomInt(4096), 64 << 10);
    fs.writeFileSync(file(), data);
  };

  beforeAll(async () => {
    dir = tmpDir('chunk-key');
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    fs.mkdirSync(src);
    data = mixedContent(40 << 20, 11);
    fs.writeFileSync(file(), data);
    await initRepository(repo, { name: 'key.example.org', chunking: params });
    await publishTree(repo, src, 'sw');
  }, 60_000);
  afterAll(() => rmrf(dir));

  it('is 32 private bytes; the cache names it by an id, is private too, and neither is served', async () => {
    const key = fs.readFileSync(stateFile('chunk-key'));
    expect(key.length).toBe(32);
    expect(fs.statSync(stateFile('chunk-key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(stateFile('chunk-cache.json')).mode & 0o777).toBe(0o600);
    const cache = fs.readFileSync(stateFile('chunk-cache.json'), 'utf8');
    expect(JSON.parse(cache).key).toMatch(/^[0-9a-f]{16}$/);
    expect(cache).not.toContain(key.toString('hex'));
    const server = await serveRepository(repo, { port: 0 });
    try {
      expect((await fetch(`${server.url}/.cvmfspublished`)).status).toBe(200);
      for (const name of ['chunk-key', 'chunk-cache.json']) expect((await fetch(`${server.url}/.gridforge/${name}`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('a republish after an edit stores only the edited chunks (chunks longer than the digest pieces included)', async () => {
    const before = new Set((await chunksOf()).map((c) => c.hash));
    expect([...before].length).toBeGreaterThan(8);
    edit();
    await publishTree(repo, src, 'sw');
    const after = await chunksOf();
    expect(after.some((c) => c.size > 1 << 20)).toBe(true);
    const fresh = after.filter((c) => !before.has(c.hash));
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.length).toBeLessThanOrEqual(3);
    expect(after.map((c) => c.offset + c.size)).toEqual(cutPoints(data, params));
    expect(sha256(await (await openRepository(repo)).readFile('sw/f.bin'))).toBe(sha256(data));
  }, 60_000);

  it('an unchanged chunk whose object has gone is read again and stored', async () => {
    const before = await chunksOf();
    const gone = before[1];
    fs.rmSync(objectOf(gone.hash));
    edit();
    await publishTree(repo, src, 'sw');
    const after = await chunksOf();
    expect(after[1].hash).toBe(gone.hash);
    expect(fs.existsSync(objectOf(gone.hash))).toBe(true);
    expect(sha256(await (await openRepository(repo)).readFile('sw/f.bin'))).toBe(sha256(data));
    expect((await verifyRepository(repo)).problems).toEqual([]);
  }, 60_000);

  it('a replaced or damaged key drops the cache made under it: the content is stored right all the same', async () => {
    const oldId = JSON.parse(fs.readFileSync(stateFile('chunk-cache.json'), 'utf8')).key;
    fs.writeFileSync(stateFile('chunk-key'), 'short');
    edit();
    await publishTree(repo, src, 'sw');
    expect(fs.readFileSync(stateFile('chunk-key')).length).toBe(32);
    const cache = JSON.parse(fs.readFileSync(stateFile('chunk-cache.json'), 'utf8'));
    expect(cache.key).not.toBe(oldId);
    expect(cache.lists.length).toBe(1); // the lists made under the old key were dropped
    expect((await chunksOf()).map((c) => c.offset + c.size)).toEqual(cutPoints(data, params));
    expect(sha256(await (await openRepository(repo)).readFile('sw/f.bin'))).toBe(sha256(data));
    expect((await verifyRepository(repo)).problems).toEqual([]);
  }, 60_000);
});

describe('previous chunks checked on a second thread (chunk-store.mjs startLane)', () => {
  it('an edit in the later half (the lane\'s), then in the earlier half, stores only the edited chunks; a shorter file too', async () => {
    const params = { min: 256 << 10, avg: 512 << 10, max: 1 << 20 };
    const dir = tmpDir('chunk-lane');
    try {
      const repo = path.join(dir, 'repo');
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      const file = path.join(src, 'f.bin');
      let data = mixedContent(48 << 20, 23);
      fs.writeFileSync(file, data);
      await initRepository(repo, { name: 'lane.example.org', chunking: params });
      await publishTree(repo, src, 'sw');
      const chunksOf = async () => (await (await openRepository(repo)).stat('sw/f.bin'))!.chunks!;
      for (const at of [0.8, 0.2]) {
        const before = await chunksOf();
        expect(before.length).toBeGreaterThan(32);
        crypto.randomFillSync(data, Math.floor(data.length * at), 4096);
        fs.writeFileSync(file, data);
        await publishTree(repo, src, 'sw');
        const after = await chunksOf();
        const known = new Set(before.map((c) => c.hash));
        const fresh = after.filter((c) => !known.has(c.hash));
        expect(fresh.length, `edit at ${at}`).toBeGreaterThan(0);
        expect(fresh.length, `edit at ${at}`).toBeLessThanOrEqual(3);
        expect(after.map((c) => c.offset + c.size)).toEqual(cutPoints(data, params));
        expect(sha256(await (await openRepository(repo)).readFile('sw/f.bin'))).toBe(sha256(data));
      }
      data = data.subarray(0, data.length - (5 << 20)); // the lane's last chunks no longer exist
      fs.writeFileSync(file, data);
      await publishTree(repo, src, 'sw');
      expect((await chunksOf()).map((c) => c.offset + c.size)).toEqual(cutPoints(data, params));
      expect(sha256(await (await openRepository(repo)).readFile('sw/f.bin'))).toBe(sha256(data));
      expect((await verifyRepository(repo)).problems).toEqual([]);
    } finally {
      rmrf(dir);
    }
  }, 90_000);
});
