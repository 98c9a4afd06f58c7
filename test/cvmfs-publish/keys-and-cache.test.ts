/**
 * Catalog path keys (JavaScript MD5) against node:crypto, and the incremental scan cache file:
 * round trip, a damaged file, the cache of older versions, and what a hit requires.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5path } from '../../cvmfs-publish/format.ts';
import { ScanCache } from '../../cvmfs-publish/scan-cache.ts';
import { rmrf, tmpDir } from './helpers.ts';

let dir: string;
beforeAll(() => {
  dir = tmpDir('keys');
});
afterAll(() => rmrf(dir));

function cryptoKey(p: string): [bigint, bigint] {
  const d = createHash('md5').update(p, 'utf8').digest();
  return [d.readBigInt64LE(0), d.readBigInt64LE(8)];
}

describe('md5path', () => {
  it('equals node:crypto for every padding length, multi-block and non-ASCII paths', () => {
    const samples = ['', '/', '/a', '/sw/tree/pkg1/sub2/f123.dat', '/ünïcødé/日本語/😀', 'z'.repeat(5000)];
    for (let n = 0; n < 200; n++) samples.push('/'.padEnd(n, 'x'));
    for (let i = 0; i < 2000; i++) samples.push(`/${randomBytes(1 + (i % 120)).toString('base64')}/ä${i}`);
    for (const s of samples) expect(md5path(s), JSON.stringify(s).slice(0, 60)).toEqual(cryptoKey(s));
  });

  it('the root key is the MD5 of the empty string, as in every cvmfs manifest', () => {
    const [a, b] = md5path('');
    const bytes = Buffer.alloc(16);
    bytes.writeBigInt64LE(a, 0);
    bytes.writeBigInt64LE(b, 8);
    expect(bytes.toString('hex')).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });
});

describe('scan cache', () => {
  const id = (ino: number, over: Partial<{ dev: number; size: number; mtimeMs: number; ctimeMs: number }> = {}) => ({ dev: 2049, ino, size: 100, mtimeMs: 1_700_000_000_123.456, ctimeMs: 1_700_000_000_223.5, ...over });
  const hashOf = (i: number) => createHash('sha1').update(String(i)).digest('hex');

  it('survives a save and load; a hit needs the same device, inode, size, mtime and ctime', async () => {
    const file = path.join(dir, 'a', 'scan-cache.bin');
    const c = new ScanCache(file);
    for (let i = 1; i <= 1000; i++) c.set(id(i), hashOf(i));
    c.set(id(2 ** 40), hashOf(0)); // an inode number beyond the small-integer index
    await c.save();
    const d = new ScanCache(file);
    const get = (x: ReturnType<typeof id>) => d.get(x.dev, x.ino, x.size, x.mtimeMs, x.ctimeMs);
    expect(get(id(7))).toBe(hashOf(7));
    expect(get(id(2 ** 40))).toBe(hashOf(0));
    expect(get(id(7, { dev: 2050 }))).toBeUndefined();
    expect(get(id(7, { size: 101 }))).toBeUndefined();
    expect(get(id(7, { mtimeMs: 1_700_000_000_123.457 }))).toBeUndefined();
    expect(get(id(7, { ctimeMs: 1_700_000_000_999 }))).toBeUndefined();
    expect(get(id(5000))).toBeUndefined();
    // a changed file replaces its record; what was loaded is written back unchanged
    d.set(id(7, { size: 5 }), hashOf(77));
    await d.save();
    const e = new ScanCache(file);
    expect(e.get(2049, 7, 5, id(7).mtimeMs, id(7).ctimeMs)).toBe(hashOf(77));
    expect(e.get(2049, 8, 100, id(8).mtimeMs, id(8).ctimeMs)).toBe(hashOf(8));
  });

  it('a damaged or truncated file is an empty cache; saving removes the SQLite cache of older versions', async () => {
    const sub = path.join(dir, 'b');
    const file = path.join(sub, 'scan-cache.bin');
    const c = new ScanCache(file);
    c.set(id(1), hashOf(1));
    await c.save();
    fs.truncateSync(file, fs.statSync(file).size - 3);
    expect(new ScanCache(file).get(2049, 1, 100, id(1).mtimeMs, id(1).ctimeMs)).toBeUndefined();
    fs.writeFileSync(file, 'not a cache');
    expect(new ScanCache(file).get(2049, 1, 100, id(1).mtimeMs, id(1).ctimeMs)).toBeUndefined();
    fs.writeFileSync(path.join(sub, 'scan-cache.db'), 'old');
    const d = new ScanCache(file);
    d.set(id(2), hashOf(2));
    await d.save();
    expect(fs.existsSync(path.join(sub, 'scan-cache.db'))).toBe(false);
    expect(fs.readdirSync(sub)).toEqual(['scan-cache.bin']);
  });
});
