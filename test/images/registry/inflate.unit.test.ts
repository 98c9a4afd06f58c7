/**
 * Inflating a gzip layer while it downloads (images/registry/inflate-blob.ts), against a minimal
 * blob server on loopback (plain HTTP, as loopback registries may be): the decompressor writes the
 * plain file itself and this process reads it behind it to hash it and read its tar headers.
 * Every decompressor this machine has (igzip, pigz, zlib) inflates into the caller's file; a
 * broken gzip stream, a decompression bomb and a digest mismatch each fail naming the layer and
 * leave no file behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipInflater, gzipTools } from '../../../images/archive/compression.ts';
import { RegistryClient } from '../../../images/registry/client.ts';
import { downloadInflated } from '../../../images/registry/inflate-blob.ts';
import type { Descriptor } from '../../../images/registry/manifest.ts';
import { layerTar, sha256hex } from '../flatten/helpers.ts';

let work: string;
let server: http.Server;
let host: string;
const blobs = new Map<string, Buffer>();

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-inflate-'));
  server = http.createServer((req, res) => {
    if (req.url === '/v2/') { res.writeHead(200).end('{}'); return; }
    const m = /^\/v2\/fixture\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    const b = m && blobs.get(m[1]);
    if (!b) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Length': b.length, 'Content-Type': 'application/octet-stream' });
    // in pieces, as a network delivers it: the reader must catch up with the decompressor many times
    let off = 0;
    const next = () => {
      if (off >= b.length) { res.end(); return; }
      const piece = b.subarray(off, off + 256 * 1024);
      off += piece.length;
      if (res.write(piece)) setImmediate(next);
      else res.once('drain', next);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

function serve(blob: Buffer): Descriptor {
  const digest = `sha256:${sha256hex(blob)}`;
  blobs.set(digest, blob);
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length };
}

const client = () => new RegistryClient({ registry: host, endpoint: host, repository: 'fixture' }, 'pull', { insecure: new Set(), timeoutMs: 10_000, attempts: 1, backoffMs: 10 });

/** A tar of `files` files of pseudo-random (compressible, not trivially) contents, about `each` bytes apiece. */
function plainLayer(files: number, each: number): Buffer {
  const words = ['cvmfs', 'alice', 'jalien', 'slurm', 'job', 'agent', 'wrapper', 'catalog'];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const entries: { path: string; type?: 'dir'; data?: string }[] = [{ path: 'opt/', type: 'dir' }];
  for (let i = 0; i < files; i++) {
    const parts: string[] = [];
    for (let n = 0; n < each; ) { const w = `${words[rnd() % words.length]}${rnd() % 1000} `; parts.push(w); n += w.length; }
    entries.push({ path: `opt/f${i}`, data: parts.join('') });
  }
  return layerTar(entries);
}

describe('gzip decompressors writing into the caller\'s file', () => {
  const plain = plainLayer(40, 60_000);
  // two gzip members, as pigz and some registries write: the whole stream must come out
  const gz = Buffer.concat([zlib.gzipSync(plain.subarray(0, 1_000_000)), zlib.gzipSync(plain.subarray(1_000_000))]);

  for (const tool of gzipTools()) {
    it(`${tool}: inflates every member into the file; a corrupt stream is an error`, async () => {
      const file = path.join(work, `plain-${tool}`);
      const fd = fs.openSync(file, 'wx', 0o600);
      try {
        const inf = gzipInflater(fd, tool);
        for (let o = 0; o < gz.length; o += 100_000) inf.input.write(gz.subarray(o, o + 100_000));
        inf.input.end();
        await inf.done;
      } finally {
        fs.closeSync(fd);
      }
      expect(sha256hex(fs.readFileSync(file))).toBe(sha256hex(plain));

      const bad = Buffer.from(gz);
      bad.fill(0x55, 2000, 6000); // deflate data overwritten
      const fd2 = fs.openSync(`${file}-bad`, 'wx', 0o600);
      try {
        const inf = gzipInflater(fd2, tool);
        inf.input.on('error', () => undefined);
        inf.input.end(bad);
        await expect(inf.done).rejects.toThrow();
      } finally {
        fs.closeSync(fd2);
      }
    });
  }
});

describe('downloadInflated', () => {
  it('the plain file, its DiffID and its entries, read behind the decompressor', async () => {
    const plain = plainLayer(300, 20_000); // ~6 MB plain: many catch-ups with the decompressor
    const d = serve(zlib.gzipSync(plain, { level: 1 }));
    const file = path.join(work, 'ok.tar');
    const scan = await downloadInflated(client(), d, file, 'fixture layer', { maxBytes: 1 << 30, spaceDir: work });
    expect(scan.digest).toBe(`sha256:${sha256hex(plain)}`);
    expect(scan.total).toBe(plain.length);
    expect(scan.complete).toBe(true);
    expect(scan.entries.map((e) => e.header.path)).toEqual(['opt/', ...Array.from({ length: 300 }, (_, i) => `opt/f${i}`)]);
    const f7 = scan.entries.find((e) => e.header.path === 'opt/f7')!;
    const fd = fs.openSync(file, 'r');
    const got = Buffer.alloc(f7.header.size);
    fs.readSync(fd, got, 0, got.length, f7.offset);
    fs.closeSync(fd);
    expect(got.toString()).toMatch(/^[a-z]+\d+ /);
    expect(got.equals(plain.subarray(f7.offset, f7.offset + f7.header.size))).toBe(true);
  });

  it('a gzip stream that breaks off is an error naming the layer; the file is removed', async () => {
    const gz = zlib.gzipSync(plainLayer(50, 20_000));
    const d = serve(gz.subarray(0, gz.length - 5000)); // its digest matches: only the gzip stream is wrong
    const file = path.join(work, 'cut.tar');
    await expect(downloadInflated(client(), d, file, 'fixture layer', { maxBytes: 1 << 30, spaceDir: work })).rejects.toThrow(/layer sha256:[0-9a-f]{64} is not a valid gzip stream/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a bomb stops near the limit, naming it; the file is removed', async () => {
    // one file of zeros in a real tar (a stream of zeros alone would end at once as an empty archive)
    const d = serve(zlib.gzipSync(layerTar([{ path: 'zeros', data: Buffer.alloc(96 << 20) }]), { level: 9 })); // ~100 KiB that inflate to 96 MiB
    const file = path.join(work, 'bomb.tar');
    const t0 = Date.now();
    const err = await downloadInflated(client(), d, file, 'fixture layer', { maxBytes: 8 << 20, spaceDir: work }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/uncompressed layer is larger than the per-layer limit of 8 MiB \((\d+) bytes so far\)/);
    expect(Number(/\((\d+) bytes so far\)/.exec((err as Error).message)![1])).toBeLessThan(64 << 20);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a blob that is not what its descriptor says is refused; the file is removed', async () => {
    const gz = zlib.gzipSync(plainLayer(5, 1000));
    const d = { ...serve(gz), digest: `sha256:${crypto.createHash('sha256').update('other').digest('hex')}` };
    blobs.set(d.digest, gz);
    const file = path.join(work, 'swapped.tar');
    await expect(downloadInflated(client(), d, file, 'fixture layer', { maxBytes: 1 << 30, spaceDir: work })).rejects.toThrow(/hashes to sha256:/);
    expect(fs.existsSync(file)).toBe(false);
  });
});
