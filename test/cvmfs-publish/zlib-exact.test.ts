/**
 * The certificate (X) and meta-info (M) objects are deflated byte for byte as stock zlib does
 * (cvmfs-publish/zlib-exact.mjs): `cvmfs_swissknife pull` inflates these two and deflates them
 * again with the system zlib under the same name (cvmfs/swissknife_pull.cc StoreBuffer), so a
 * replica of a repository whose X or M came from Node's zlib does not mount. The reference is
 * Debian's zlib itself, through python3's zlib module (which links the system libz).
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, openTransaction, verifyRepository } from '../../cvmfs-publish/index.ts';
import { objectPath } from '../../cvmfs-publish/format.ts';
import { parseManifest, signManifest } from '../../cvmfs-publish/manifest.ts';
import { deflateStockZlib } from '../../cvmfs-publish/zlib-exact.mjs';
import { manifestFields, rmrf, tmpDir } from './helpers.ts';

/** Every input through Debian's zlib compress(data, 6) in ONE python3 process (length-prefixed frames both ways). */
function stockCompress(inputs: Buffer[]): Buffer[] {
  const script = [
    'import sys, zlib, struct',
    'data = sys.stdin.buffer.read(); out = []; i = 0',
    'while i < len(data):',
    '    (n,) = struct.unpack(">I", data[i:i+4]); c = zlib.compress(data[i+4:i+4+n], 6)',
    '    out.append(struct.pack(">I", len(c)) + c); i += 4 + n',
    'sys.stdout.buffer.write(b"".join(out))',
  ].join('\n');
  const frames = inputs.flatMap((b) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return [len, b];
  });
  const raw = execFileSync('python3', ['-c', script], { input: Buffer.concat(frames), maxBuffer: 1 << 30 });
  const out: Buffer[] = [];
  for (let i = 0; i < raw.length; ) {
    const n = raw.readUInt32BE(i);
    out.push(raw.subarray(i + 4, i + 4 + n));
    i += 4 + n;
  }
  return out;
}

/** Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced. */
function prng(seed: number, n: number, alphabet = 256): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = (x >>> 0) % alphabet;
  }
  return b;
}

let dir: string;
beforeAll(() => {
  dir = tmpDir('zlib-exact');
});
afterAll(() => rmrf(dir));

describe('deflateStockZlib (zlib-exact.mjs) against Debian zlib compress(data, 6)', () => {
  it('python3 reaches the system zlib 1.2.13 (what cvmfs_server links on Debian 12)', () => {
    const v = execFileSync('python3', ['-c', 'import zlib; print(zlib.ZLIB_RUNTIME_VERSION)'], { encoding: 'utf8' }).trim();
    expect(v).toBe('1.2.13');
  });

  it('gives the same bytes for text, binary, empty, 1 byte, 100 KB, certificates, JSON and more', () => {
    const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${i % 7 ? 'foo' : 'bar'} ${(i * 2654435761) % 1000}\n`).join('');
    const cert = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=zlib-exact.example.org', '-days', '1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const inputs: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from('a'),
      Buffer.from('aa'),
      Buffer.from(fs.readFileSync(path.join(import.meta.dirname, '../../cvmfs-publish/transaction.ts'))),
      Buffer.from(JSON.stringify({ administrator: 'gridforge', email: '', 'recommended-stratum1s': [], custom: {} }, null, 2)),
      cert,
      randomBytes(100_000),
      prng(7, 100_000),
      Buffer.alloc(1 << 20), // long matches, many blocks
      Buffer.from(lines), // > 1 MB of text: several deflate blocks
      Buffer.concat([prng(3, 50_000), Buffer.from(lines.slice(0, 300_000)), prng(4, 70_000)]),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    ];
    if (fs.existsSync('/usr/bin/ls')) inputs.push(fs.readFileSync('/usr/bin/ls')); // an ELF binary
    // sizes around the 16 KiB window edges and skewed alphabets (literal/match mixes)
    for (let i = 0; i < 60; i++) inputs.push(prng(100 + i, (i * 7919) % 70_000, 2 + (i % 40)));
    const expected = stockCompress(inputs);
    const differ = inputs.map((b, i) => (deflateStockZlib(b).equals(expected[i]) ? -1 : i)).filter((i) => i >= 0);
    expect(differ).toEqual([]);
    // the function returns a Buffer whose bytes are exactly the stream (no shared pool slack)
    const one = deflateStockZlib(Buffer.from('x'));
    expect(Buffer.isBuffer(one)).toBe(true);
    expect(zlib.inflateSync(one).toString()).toBe('x');
  });
});

/** Inflate an object and deflate it again as `cvmfs_swissknife pull` does; the replica's bytes must hash to the object's name. */
function asReplicated(repo: string, hash: string, suffix: 'X' | 'M'): { original: Buffer; replica: Buffer } {
  const original = fs.readFileSync(path.join(repo, objectPath(hash, suffix)));
  const [replica] = stockCompress([zlib.inflateSync(original)]);
  return { original, replica };
}

function expectReplicable(repo: string): void {
  const m = manifestFields(repo);
  for (const [suffix, hash] of [['X', m.X], ['M', m.M]] as const) {
    expect(hash, `manifest field ${suffix}`).toMatch(/^[0-9a-f]{40}$/);
    const { original, replica } = asReplicated(repo, hash, suffix);
    expect(replica.equals(original), `${suffix} object ${hash}: stock zlib gives other bytes`).toBe(true);
    expect(createHash('sha1').update(replica).digest('hex')).toBe(hash);
  }
}

describe('the X and M objects of a repository survive a Stratum-1 pull', () => {
  const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };

  it('init and publish write X and M with stock zlib bytes (inflate, compress(6) again: same bytes, SHA-1 = name)', async () => {
    const repo = path.join(dir, 'fresh');
    await initRepository(repo, { name: 'exact.example.org', keysDir: path.join(dir, 'fresh.keys') });
    expectReplicable(repo);
    const tx = openTransaction(repo);
    await tx.putFile('sw/readme', Buffer.from('hello\n'), meta);
    await tx.commit();
    expectReplicable(repo);
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });

  it('a repository whose X and M were deflated by Node zlib gets stock objects at its next publish', async () => {
    const repo = path.join(dir, 'old');
    const keysDir = path.join(dir, 'old.keys');
    await initRepository(repo, { name: 'old.example.org', keysDir });
    // make the head look like one written before zlib-exact.mjs: X and M deflated by Node's zlib
    const mfile = path.join(repo, '.cvmfspublished');
    const { manifest } = parseManifest(fs.readFileSync(mfile));
    const nodeObject = (hash: string, suffix: 'X' | 'M'): string => {
      const bytes = zlib.deflateSync(zlib.inflateSync(fs.readFileSync(path.join(repo, objectPath(hash, suffix)))));
      const h = createHash('sha1').update(bytes).digest('hex');
      fs.writeFileSync(path.join(repo, objectPath(h, suffix)), bytes);
      return h;
    };
    const oldX = nodeObject(manifest.certificate, 'X');
    const oldM = nodeObject(manifest.metainfo!, 'M');
    expect(oldM).not.toBe(manifest.metainfo); // Node's zlib writes other bytes than stock zlib for this JSON
    const repoKey = createPrivateKey(fs.readFileSync(path.join(keysDir, 'old.example.org.key')));
    fs.writeFileSync(mfile, signManifest({ ...manifest, certificate: oldX, metainfo: oldM }, repoKey));
    expect(asReplicated(repo, oldM, 'M').replica.equals(fs.readFileSync(path.join(repo, objectPath(oldM, 'M'))))).toBe(false);

    const tx = openTransaction(repo);
    await tx.putFile('sw/readme', Buffer.from('hello\n'), meta);
    await tx.commit();
    expectReplicable(repo);
    expect(manifestFields(repo).M).toBe(manifest.metainfo); // the same content, now under its stock zlib name
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});
