/**
 * Hostile image inputs found by review, each refused with a clear exit-2 error naming the member,
 * blob or layer at fault, or read exactly as the engine reads it:
 * - tar entries parsed as Go's archive/tar parses them (header-only types with a size, PAX/GNU
 *   precedence, global headers): same paths as `docker load` + `docker export` of the same archive;
 * - JSON members/blobs bounded and required to be regular files (symlink to /dev/zero, FIFO, 1 GiB);
 * - decompression bombs stopped at the per-layer limit, padding after end-of-archive bounded,
 *   spool removed on errors and on SIGTERM; entries counted while scanning;
 * - blobs checked against their digests; malformed documents named, never a raw TypeError.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive } from '../../../images/flatten/index.ts';
import { scanLayers } from '../../../images/archive/layer-scan.ts';
import { indexTarFile } from '../../../images/archive/tar-index.ts';
import { encodeHeader, END_OF_ARCHIVE, padded, type EntryType } from '../../../images/archive/tar-format.ts';
import { UsageError } from '../../../base/errors.ts';
import { exportTree, imageConfig, isDockerPlaceholder, layerTar, legacyArchive, PREFIX, removeImages, sha256hex, treeFromTarFile, type ImageSpec } from './helpers.ts';

const CLI = path.resolve('scripts/bin/gridforge.mjs');
const TAG = `${PREFIX}-hostile:${process.pid}`;
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-hostile-`));
});

afterAll(async () => {
  await removeImages([TAG]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

// ------------------------------------------------------------------ crafting

/** One raw header block: any typeflag and size (encodeHeader only writes sizes for files). */
function rawHeader(name: string, typeflag: string, size: number, opts: { linkname?: string; devmajor?: number; devminor?: number } = {}): Buffer {
  const b = encodeHeader({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 1_700_000_000, linkname: '', devmajor: opts.devmajor ?? 0, devminor: opts.devminor ?? 0, xattrs: new Map() });
  if (b.length !== 512) throw new Error('rawHeader: name too long for one block');
  b[156] = typeflag.charCodeAt(0);
  b.fill(0, 157, 257);
  b.write(opts.linkname ?? '', 157, 100, 'latin1');
  return fixChecksum(b);
}

function fixChecksum(b: Buffer): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

function withData(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc(padded(data.length) - data.length)]);
}

function fileEntry(name: string, content: string): Buffer {
  return Buffer.concat([rawHeader(name, '0', content.length), withData(Buffer.from(content))]);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/** A PAX ('x') or global ('g') header with its records. */
function paxEntry(records: [string, string][], typeflag: 'x' | 'g' = 'x', raw?: string): Buffer {
  const data = Buffer.from(raw ?? records.map(([k, v]) => paxRecord(k, v)).join(''));
  return Buffer.concat([rawHeader(typeflag === 'g' ? 'pax_global_header' : 'PaxHeaders/x', typeflag, data.length), withData(data)]);
}

function gnuLongNameEntry(name: string): Buffer {
  const data = Buffer.from(`${name}\0`);
  return Buffer.concat([rawHeader('././@LongLink', 'L', data.length), withData(data)]);
}

/** A non-file entry whose size field claims 1024 bytes of data: what follows is a full hidden file entry. */
function smuggling(header: (size: number) => Buffer, hidden: string): Buffer {
  const inner = fileEntry(hidden, 'HIDDEN');
  if (inner.length !== 1024) throw new Error('inner entry must be 1024 bytes');
  return Buffer.concat([header(1024), inner]);
}

function member(name: string, data: Buffer, type: EntryType = 'file', link = ''): Buffer {
  const h = encodeHeader({ path: name, type, mode: 0o644, uid: 0, gid: 0, size: type === 'file' ? data.length : 0, mtime: 0, linkname: link, devmajor: 0, devminor: 0, xattrs: new Map() });
  return type === 'file' ? Buffer.concat([h, withData(data)]) : h;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const digestOf = (b: Buffer) => `sha256:${sha256hex(b)}`;

interface Oci { blobs: Map<string, Buffer>; index: Buffer; config: Buffer; manifest: Buffer; layerBlobs: Buffer[] }

/** An OCI layout's documents for `layerBlobs` (stored as given) with `diffIds`. */
function ociImage(layerBlobs: Buffer[], diffIds: string[], configOverride?: Buffer): Oci {
  const config = configOverride ?? imageConfig({ layers: [], diffIds });
  const manifest = json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: layerBlobs.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(l), size: l.length })),
  });
  const index = json({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': TAG } }] });
  const blobs = new Map<string, Buffer>([[sha256hex(config), config], [sha256hex(manifest), manifest], ...layerBlobs.map((l) => [sha256hex(l), l] as [string, Buffer])]);
  return { blobs, index, config, manifest, layerBlobs };
}

function writeOciDir(dir: string, img: Oci): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [hex, b] of img.blobs) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hex), b);
  fs.writeFileSync(path.join(dir, 'index.json'), img.index);
  fs.writeFileSync(path.join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
}

/** A Docker 25+ style archive (blobs + index.json + manifest.json) of `img`. */
function writeD25Archive(file: string, img: Oci, patch: (name: string, b: Buffer) => Buffer = (_n, b) => b): void {
  const parts: Buffer[] = [member('blobs/', Buffer.alloc(0), 'dir'), member('blobs/sha256/', Buffer.alloc(0), 'dir')];
  for (const [hex, b] of img.blobs) parts.push(member(`blobs/sha256/${hex}`, patch(`blobs/sha256/${hex}`, b)));
  parts.push(member('index.json', img.index), member('oci-layout', json({ imageLayoutVersion: '1.0.0' })));
  parts.push(member('manifest.json', json([{ Config: `blobs/sha256/${sha256hex(img.config)}`, RepoTags: [TAG], Layers: img.layerBlobs.map((l) => `blobs/sha256/${sha256hex(l)}`) }])));
  parts.push(END_OF_ARCHIVE);
  fs.writeFileSync(file, Buffer.concat(parts));
}

const smallLayer = layerTar([{ path: 'etc/', type: 'dir' }, { path: 'etc/os-release', data: 'ID=test\n' }]);

async function refusal(source: string): Promise<{ exitCode?: number; message: string; where?: string; text: string }> {
  const err = await flattenToArchive({ source, output: path.join(work, 'out.tar') }).then(() => null, (e) => e);
  expect(err, 'must be refused').not.toBeNull();
  expect(fs.existsSync(path.join(work, 'out.tar'))).toBe(false);
  return { exitCode: err instanceof UsageError ? 2 : 1, // what the CLI exits with (scripts/cli/errors-to-exit.ts)
    message: err.message, where: err.where, text: `${err.where}: ${err.message} ${err.hint}` };
}

// ------------------------------------------------------------------ 1. tar parsing as the engine does

describe('tar entries are read as Docker reads them', () => {
  /** docker load + create + export of a one-layer archive vs gridforge's flattened layer: same paths. */
  async function sameAsDocker(name: string, layer: Buffer, mustSee: string[]): Promise<void> {
    const src = path.join(work, `${name}.tar`);
    fs.writeFileSync(src, legacyArchive({ layers: [layer], tag: TAG }));
    await execa('docker', ['load', '-i', src]);
    const oracle = await exportTree(TAG);
    for (const h of mustSee) expect(oracle.has(h), `Docker shows ${h}`).toBe(true);
    const out = path.join(work, `${name}-flat.tar`);
    await flattenToArchive({ source: src, output: out });
    const idx = indexTarFile(out);
    const mm = idx.get('manifest.json')!;
    const manifest = JSON.parse(fs.readFileSync(out).subarray(mm.offset, mm.offset + mm.size).toString());
    const l = idx.get(manifest[0].Layers[0])!;
    const flat = await treeFromTarFile(out, l.offset, l.size);
    // Docker's init layer adds etc/ (for etc/hosts...) when the image has none
    const paths = (t: Map<string, unknown>) => [...t.keys()].filter((p) => !isDockerPlaceholder(p) && !(p === 'etc' && !flat.has('etc'))).sort().join(' ');
    expect(paths(flat)).toEqual(paths(oracle));
  }

  it('entries hidden as the "data" of header-only types (FIFO, devices, links, dirs) are seen as Docker sees them', async () => {
    const layer = Buffer.concat([
      member('run/', Buffer.alloc(0), 'dir'), member('opt/', Buffer.alloc(0), 'dir'), fileEntry('visible0', 'v0'),
      smuggling((n) => rawHeader('run/fifo', '6', n), 'hidden-fifo'),
      smuggling((n) => rawHeader('opt/null', '3', n, { devmajor: 1, devminor: 3 }), 'hidden-char'),
      smuggling((n) => rawHeader('hl', '1', n, { linkname: 'visible0' }), 'hidden-hardlink'),
      smuggling((n) => rawHeader('sl', '2', n, { linkname: 'visible0' }), 'hidden-symlink'),
      smuggling((n) => rawHeader('dir5/', '5', n), 'hidden-dir'),
      smuggling((n) => rawHeader('legacydir/', '\0', n), 'hidden-rega-dir'),
      fileEntry('visible-end', 'e'),
      END_OF_ARCHIVE,
    ]);
    await sameAsDocker('smuggle', layer, ['hidden-fifo', 'hidden-char', 'hidden-hardlink', 'hidden-symlink', 'hidden-dir', 'hidden-rega-dir', 'visible-end']);
  });

  it('PAX / GNU long-name precedence and global headers as Docker reads them', async () => {
    const layer = Buffer.concat([
      // a second PAX header replaces the first (Go assigns, it does not merge)
      paxEntry([['path', 'pax-first']]), paxEntry([['mtime', '1']]), fileEntry('ustar-name', 'a'),
      // a global header ends the pending PAX state
      paxEntry([['path', 'pax-before-global']]), paxEntry([['comment', 'g']], 'g'), fileEntry('after-global', 'b'),
      // a GNU long name wins over a PAX path; an empty PAX value keeps the USTAR name
      gnuLongNameEntry('gnu-long-wins'), paxEntry([['path', 'pax-loses']]), fileEntry('ustar-3', 'c'),
      paxEntry([['path', '']]), fileEntry('empty-pax-keeps', 'd'),
      END_OF_ARCHIVE,
    ]);
    await sameAsDocker('precedence', layer, ['ustar-name', 'after-global', 'gnu-long-wins', 'empty-pax-keeps']);
  });

  it('an invalid PAX size is named as such, with the entry (not a checksum error)', async () => {
    const layer = Buffer.concat([paxEntry([['size', '12abc']]), fileEntry('victim', 'x'), END_OF_ARCHIVE]);
    const src = path.join(work, 'paxsize.tar');
    fs.writeFileSync(src, legacyArchive({ layers: [layer] }));
    const e = await refusal(src);
    expect(e.exitCode).toBe(2);
    expect(e.where).toMatch(/^layer 1 \(l0\/layer\.tar\)/);
    expect(e.message).toMatch(/invalid PAX size record "12abc" for entry "victim"/);
    expect(e.message).not.toMatch(/checksum/);
  });
});

// ------------------------------------------------------------------ 2. bounded, regular JSON documents

describe('JSON documents are bounded and must be regular files', () => {
  const img = () => ociImage([smallLayer], [digestOf(smallLayer)]);

  it('OCI layout: a config blob that is a symlink to /dev/zero is refused at once', async () => {
    const dir = path.join(work, 'oci-zero');
    const i = img();
    writeOciDir(dir, i);
    const cfg = path.join(dir, 'blobs', 'sha256', sha256hex(i.config));
    fs.rmSync(cfg);
    fs.symlinkSync('/dev/zero', cfg);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.text).toContain(`blobs/sha256/${sha256hex(i.config)} is a symbolic link, not a regular file`);
  });

  it('OCI layout: a 1 GiB config blob is refused by its size, without reading it', async () => {
    const dir = path.join(work, 'oci-big');
    const i = img();
    writeOciDir(dir, i);
    fs.truncateSync(path.join(dir, 'blobs', 'sha256', sha256hex(i.config)), 1024 ** 3); // sparse
    const before = process.memoryUsage().rss;
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain(`blobs/sha256/${sha256hex(i.config)}`);
    expect(e.message).toMatch(/is 1073741824 bytes, more than the \d+ bytes allowed/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
  });

  it('OCI layout: index.json that is a FIFO is refused, not waited on', async () => {
    const dir = path.join(work, 'oci-fifo');
    writeOciDir(dir, img());
    fs.rmSync(path.join(dir, 'index.json'));
    execFileSync('mkfifo', [path.join(dir, 'index.json')]);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.text).toContain('index.json is a FIFO, not a regular file');
  });

  it('docker-save archive: a huge manifest.json member is refused before it is buffered', async () => {
    const file = path.join(work, 'bigmanifest.tar');
    const size = 256 << 20;
    const fd = fs.openSync(file, 'w'); // sparse: header, a hole of `size` bytes, end marker
    fs.writeSync(fd, rawHeader('manifest.json', '0', size), 0, 512, 0);
    fs.writeSync(fd, END_OF_ARCHIVE, 0, 1024, 512 + size);
    fs.closeSync(fd);
    const e = await refusal(file);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain('manifest.json');
    expect(e.message).toMatch(/is 268435456 bytes, more than the \d+ bytes allowed/);
  });

  it('Docker 25+ archive: a config member that is a character device is named', async () => {
    const i = img();
    const file = path.join(work, 'chardev.tar');
    const cfgName = `blobs/sha256/${sha256hex(i.config)}`;
    const parts: Buffer[] = [];
    for (const [hex, b] of i.blobs) parts.push(`blobs/sha256/${hex}` === cfgName ? rawHeader(cfgName, '3', 0, { devmajor: 1, devminor: 5 }) : member(`blobs/sha256/${hex}`, b));
    parts.push(member('manifest.json', json([{ Config: cfgName, RepoTags: [TAG], Layers: [`blobs/sha256/${sha256hex(smallLayer)}`] }])), END_OF_ARCHIVE);
    fs.writeFileSync(file, Buffer.concat(parts));
    const e = await refusal(file);
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/member blobs\/sha256\/[0-9a-f]+ is a char, not a regular file/);
  });
});

// ------------------------------------------------------------------ 3. decompression bombs

const ZEROS = Buffer.alloc(64 << 20);

/** gzip of a tar with one file of `gib` GiB of zeros, as concatenated gzip members (built in ~1 s), and its DiffID. */
function gzipBomb(gib: number): { blob: Buffer; diffId: string } {
  const size = gib * 1024 ** 3;
  const head = rawHeader('zeros', '0', size);
  const member64 = zlib.gzipSync(ZEROS, { level: 9 });
  const hash = crypto.createHash('sha256').update(head);
  const parts = [zlib.gzipSync(head)];
  for (let done = 0; done < size; done += ZEROS.length) { parts.push(member64); hash.update(ZEROS); }
  parts.push(zlib.gzipSync(END_OF_ARCHIVE));
  hash.update(END_OF_ARCHIVE);
  return { blob: Buffer.concat(parts), diffId: `sha256:${hash.digest('hex')}` };
}

const gf = (args: string[], env: Record<string, string> = {}) => execa(process.execPath, [CLI, ...args], { reject: false, env: { ...process.env, ...env } });

function spoolFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => { for (const n of fs.readdirSync(d)) { const p = path.join(d, n); out.push(path.relative(dir, p)); if (fs.lstatSync(p).isDirectory()) walk(p); } };
  walk(dir);
  return out;
}

describe('decompression bombs', () => {
  let bomb: { blob: Buffer; diffId: string };
  let bombArchive: string;

  beforeAll(() => {
    bomb = gzipBomb(2);
    bombArchive = path.join(work, 'bomb.tar');
    fs.writeFileSync(bombArchive, legacyArchive({ layers: [bomb.blob], diffIds: [bomb.diffId], tag: `${PREFIX}/bomb:1` }));
  }, 120_000);

  it('a 2 GiB gzip bomb stops at the per-layer limit: exit 2 naming the layer and the flag, spool left empty', async () => {
    expect(bomb.blob.length).toBeLessThan(8 << 20);
    const spool = path.join(work, 'spool-limit');
    fs.mkdirSync(spool);
    const t0 = Date.now();
    const r = await gf(['image', 'flatten', bombArchive, '--output', path.join(work, 'bomb-out.tar'), '--tmp-dir', spool], { GRIDFORGE_MAX_LAYER_SIZE: '64M' });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('layer 1 (l0/layer.tar)');
    expect(r.stderr).toContain('per-layer limit of 64 MiB');
    expect(r.stderr).toContain('--max-layer-size');
    expect(spoolFiles(spool)).toEqual([]);
    expect(fs.existsSync(path.join(work, 'bomb-out.tar'))).toBe(false);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('a run killed with SIGTERM while spooling leaves no spool files', async () => {
    const spool = path.join(work, 'spool-term');
    fs.mkdirSync(spool);
    const child = spawn(process.execPath, [CLI, 'image', 'flatten', bombArchive, '--output', path.join(work, 'term-out.tar'), '--tmp-dir', spool], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((res) => child.on('close', (code, sig) => res(code ?? (sig ? 128 : null))));
    const deadline = Date.now() + 90_000;
    let spooling = false;
    while (Date.now() < deadline && child.exitCode === null) {
      const layer = spoolFiles(spool).find((p) => p.endsWith('layer-0.tar'));
      if (layer && fs.statSync(path.join(spool, layer)).size > (32 << 20)) { spooling = true; break; }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(spooling, `spool file never grew: ${stderr}`).toBe(true);
    child.kill('SIGTERM');
    const code = await exited;
    expect(code).toBe(143);
    expect(spoolFiles(spool)).toEqual([]);
  }, 150_000);

  it('data after the end-of-archive marker is bounded (not spooled)', async () => {
    const plain = Buffer.concat([smallLayer, Buffer.alloc(64 << 20)]); // 64 MiB of "padding"
    const src = path.join(work, 'trailing.tar');
    fs.writeFileSync(src, legacyArchive({ layers: [zlib.gzipSync(plain)], diffIds: [digestOf(plain)] }));
    const e = await refusal(src);
    expect(e.exitCode).toBe(2);
    expect(e.where).toBe('layer 1 (l0/layer.tar)');
    expect(e.message).toMatch(/more than 1 MiB of data after the tar end-of-archive marker/);
    // a normal tar record's worth of zero padding (GNU tar: 10 KiB records) is fine
    const padded10k = Buffer.concat([smallLayer, Buffer.alloc(10240 - (smallLayer.length % 10240))]);
    fs.writeFileSync(src, legacyArchive({ layers: [zlib.gzipSync(padded10k)], diffIds: [digestOf(padded10k)] }));
    await flattenToArchive({ source: src, output: path.join(work, 'ok.tar') });
    fs.rmSync(path.join(work, 'ok.tar'));
  });

  it('entries are counted while scanning and the scan stops at the limit', async () => {
    const many = layerTar(Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, data: '' })));
    const blob = zlib.gzipSync(many);
    const file = path.join(work, 'many.gz');
    fs.writeFileSync(file, blob);
    const spool = fs.mkdtempSync(path.join(work, 'spool-entries-'));
    const err = await scanLayers([{ label: 'layer 1 (many)', file, offset: 0, size: blob.length, diffId: digestOf(many) }], spool, undefined, { maxEntries: 20 }).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ message: 'more than 20 entries' });
    expect(err.where).toBe('layer 1 (many): f20');
    expect(fs.readdirSync(spool)).toEqual([]);
  });
});

// ------------------------------------------------------------------ 4. digests

describe('blobs are checked against their digests', () => {
  it('OCI layout: a swapped config blob (same file name, same size: changed Cmd, LD_PRELOAD added) is refused naming the blob and digest', async () => {
    const dir = path.join(work, 'oci-swap');
    const i = ociImage([smallLayer], [digestOf(smallLayer)]);
    writeOciDir(dir, i);
    const hex = sha256hex(i.config);
    const evil = Buffer.from(i.config.toString().replace('PATH=/usr/bin:/bin', 'LD_PRELOAD=/tmp.so').replace('/bin/sh', '/bin/xx'));
    expect(evil.length).toBe(i.config.length);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hex), evil);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain(`blobs/sha256/${hex}`);
    expect(e.message).toContain(`not to its digest sha256:${hex}`);
  });

  it('Docker 25+ archive: a swapped config member is refused', async () => {
    const i = ociImage([smallLayer], [digestOf(smallLayer)]);
    const hex = sha256hex(i.config);
    const file = path.join(work, 'd25-swap.tar');
    writeD25Archive(file, i, (name, b) => (name === `blobs/sha256/${hex}` ? Buffer.from(b.toString().replace('/bin/sh', '/bin/xx')) : b));
    const e = await refusal(file);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain(`blobs/sha256/${hex}`);
    expect(e.message).toContain(`not to its digest sha256:${hex}`);
  });

  it('OCI layout: a recompressed layer (same DiffID, other blob) is refused naming the layer blob', async () => {
    const gz = zlib.gzipSync(smallLayer, { level: 9 });
    const other = zlib.gzipSync(smallLayer, { level: 1 });
    expect(other.equals(gz)).toBe(false);
    const i = ociImage([gz], [digestOf(smallLayer)]);
    const dir = path.join(work, 'oci-layer-swap');
    writeOciDir(dir, i);
    const hex = sha256hex(gz);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', hex), other);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.text).toContain(`blobs/sha256/${hex}`);
    expect(e.message).toMatch(new RegExp(`blob is ${other.length} bytes but its descriptor says ${gz.length}|not to its digest sha256:${hex}`));
  });

  it('OCI layout: a same-size swapped gzip layer is caught by the digest while streaming', async () => {
    const a = zlib.gzipSync(smallLayer, { level: 9 });
    const b = Buffer.from(a);
    b[4] ^= 0xff; // gzip MTIME field: same content, same size, other bytes
    const i = ociImage([a], [digestOf(smallLayer)]);
    const dir = path.join(work, 'oci-layer-same-size');
    writeOciDir(dir, i);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', sha256hex(a)), b);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toBe(`layer 1 (blobs/sha256/${sha256hex(a)})`);
    expect(e.message).toContain(`not to its digest sha256:${sha256hex(a)}`);
  });
});

// ------------------------------------------------------------------ 5. clear errors

describe('malformed documents get a UsageError naming the member or blob', () => {
  const legacyWith = (file: string, manifest: Buffer) => {
    const cfg = imageConfig({ layers: [smallLayer] } as ImageSpec);
    fs.writeFileSync(file, Buffer.concat([member('l0/layer.tar', smallLayer), member('config.json', cfg), member('manifest.json', manifest), END_OF_ARCHIVE]));
  };

  it('manifest.json without Config/Layers (was a raw TypeError)', async () => {
    const file = path.join(work, 'm-empty.tar');
    legacyWith(file, json([{}]));
    const e = await refusal(file);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain('manifest.json');
    expect(e.message).toContain('Config is missing');
  });

  it('manifest.json that is not JSON', async () => {
    const file = path.join(work, 'm-bad.tar');
    legacyWith(file, Buffer.from('[{"Config": '));
    const e = await refusal(file);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain('manifest.json');
    expect(e.message).toContain('not valid JSON');
  });

  it('OCI layout: index.json whose manifests is not an array (was a raw TypeError)', async () => {
    const dir = path.join(work, 'oci-idx-shape');
    writeOciDir(dir, ociImage([smallLayer], [digestOf(smallLayer)]));
    fs.writeFileSync(path.join(dir, 'index.json'), json({ schemaVersion: 2, manifests: 5 }));
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain('index.json');
    expect(e.message).toContain('manifests is not an array');
  });

  it('OCI layout: index.json that is not JSON', async () => {
    const dir = path.join(work, 'oci-idx-json');
    writeOciDir(dir, ociImage([smallLayer], [digestOf(smallLayer)]));
    fs.writeFileSync(path.join(dir, 'index.json'), '{"manifests": [');
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain('index.json');
    expect(e.message).toContain('not valid JSON');
  });

  it('OCI layout: a config blob that is not JSON (was a raw SyntaxError)', async () => {
    const dir = path.join(work, 'oci-cfg-json');
    const badCfg = Buffer.from('{"rootfs": ');
    writeOciDir(dir, ociImage([smallLayer], [digestOf(smallLayer)], badCfg));
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.where).toContain(`blobs/sha256/${sha256hex(badCfg)}`);
    expect(e.message).toContain('not valid JSON');
  });

  it('OCI layout: a config whose rootfs.diff_ids is not an array', async () => {
    const dir = path.join(work, 'oci-cfg-shape');
    const cfg = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: 'nope' } });
    writeOciDir(dir, ociImage([smallLayer], [digestOf(smallLayer)], cfg));
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('rootfs.diff_ids is missing or not an array');
  });

  it('OCI layout: a blob that is a directory (was EISDIR)', async () => {
    const dir = path.join(work, 'oci-eisdir');
    const i = ociImage([smallLayer], [digestOf(smallLayer)]);
    writeOciDir(dir, i);
    const p = path.join(dir, 'blobs', 'sha256', sha256hex(i.manifest));
    fs.rmSync(p);
    fs.mkdirSync(p);
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.text).toContain(`blobs/sha256/${sha256hex(i.manifest)} is a directory, not a regular file`);
  });

  it('OCI layout: blobs/ that is a file (was ENOTDIR)', async () => {
    const dir = path.join(work, 'oci-enotdir');
    writeOciDir(dir, ociImage([smallLayer], [digestOf(smallLayer)]));
    fs.rmSync(path.join(dir, 'blobs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'blobs'), 'x');
    const e = await refusal(dir);
    expect(e.exitCode).toBe(2);
    expect(e.text).toContain('blobs is a regular file, not a directory');
  });
});
