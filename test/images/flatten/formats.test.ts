/**
 * Every input format gives the same flattened layer: legacy docker-save, Docker 25+ (blobs +
 * index.json, legacy paths as symlinks), containerd-store archives (gzip layers, nested index),
 * plain OCI archives, OCI layout dirs with zstd layers; compression detected by magic bytes (media
 * types deliberately wrong). A layer whose DiffID does not match is refused, naming the layer.
 * The legacy archive is also loaded into the real engine and exported as the oracle.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive } from '../../../images/flatten/index.ts';
import { indexTarFile } from '../../../images/archive/tar-index.ts';
import { encodeHeader, END_OF_ARCHIVE, padded, type EntryType } from '../../../images/archive/tar-format.ts';
import { UsageError } from '../../../base/errors.ts';
import { diffTrees, exportTree, imageConfig, layerTar, legacyArchive, PREFIX, removeImages, sha256hex, treeFromTarFile, type ImageSpec } from './helpers.ts';

const TAG = `${PREFIX}-formats:${process.pid}`;
let work: string;

const spec: ImageSpec = {
  tag: TAG,
  layers: [
    layerTar([
      { path: 'bin/', type: 'dir' }, { path: 'bin/tool', data: 'tool v1', mode: 0o755 },
      { path: 'etc/', type: 'dir' }, { path: 'etc/conf', data: 'a=1\n' }, { path: 'etc/old', data: 'old' },
      { path: 'data/', type: 'dir' }, { path: 'data/x/', type: 'dir' }, { path: 'data/x/1', data: '1' },
      { path: 'lib', type: 'symlink', link: 'usr/lib' }, { path: 'usr/', type: 'dir' }, { path: 'usr/lib/', type: 'dir' },
    ]),
    layerTar([
      { path: 'etc/', type: 'dir', mode: 0o750 }, { path: 'etc/.wh.old', type: 'file' },
      { path: 'data/', type: 'dir' }, { path: 'data/x/', type: 'dir' }, { path: 'data/x/2', data: '2' }, { path: 'data/.wh..wh..opq' },
      { path: 'bin/tool3', data: 'tool3', mode: 0o4755, uid: 5 }, { path: 'bin/tool4', type: 'hardlink', link: 'bin/tool3', mode: 0o4755, uid: 5 },
      { path: 'usr/lib/libz.so', data: 'ELF', mode: 0o755, xattrs: { 'user.test': Buffer.from([0, 1, 2, 255]) } },
    ]),
    layerTar([{ path: 'bin/tool', data: 'tool v2', mode: 0o755 }, { path: 'bin/tool3', data: 'tool3 v2', mode: 0o755 }, { path: 'bin/tool5', data: 't5' }, { path: 'bin/tool6', type: 'hardlink', link: '/bin/tool5', mode: 0o600, uid: 9 }, { path: 'empty/', type: 'dir', mode: 0o700, uid: 12, gid: 34 }]),
  ],
};

function member(name: string, data: Buffer, type: EntryType = 'file', link = ''): Buffer {
  const h = encodeHeader({ path: name, type, mode: 0o644, uid: 0, gid: 0, size: type === 'file' ? data.length : 0, mtime: 0, linkname: link, devmajor: 0, devminor: 0, xattrs: new Map() });
  return type === 'file' ? Buffer.concat([h, data, Buffer.alloc(padded(data.length) - data.length)]) : h;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const blobName = (b: Buffer) => `blobs/sha256/${sha256hex(b)}`;

interface Layout { blobs: Map<string, Buffer>; index: Buffer; dockerManifest?: Buffer; symlinks?: [string, string][] }

/** Build an OCI-style layout: layers transformed by `compress`, optionally a nested index. */
function ociLayout(s: ImageSpec, compress: (b: Buffer) => Buffer, opts: { nested?: boolean; mediaType?: string; dockerManifest?: boolean; legacySymlinks?: boolean }): Layout {
  const blobs = new Map<string, Buffer>();
  const put = (b: Buffer) => { blobs.set(blobName(b), b); return b; };
  const cfg = put(imageConfig(s));
  const layers = s.layers.map((l) => put(compress(l)));
  const manifest = put(json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256hex(cfg)}`, size: cfg.length },
    // deliberately claim "uncompressed" whatever the bytes are: detection must go by magic bytes
    layers: layers.map((l) => ({ mediaType: opts.mediaType ?? 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256hex(l)}`, size: l.length })),
  }));
  let top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(manifest)}`, size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } };
  if (opts.nested) {
    const attest = put(json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { digest: `sha256:${sha256hex(cfg)}` }, layers: [] }));
    const inner = put(json({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256hex(attest)}`, size: attest.length, platform: { architecture: 'unknown', os: 'unknown' } },
        top,
      ],
    }));
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha256hex(inner)}`, size: inner.length } as typeof top;
  }
  const index = json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...top, annotations: { 'io.containerd.image.name': TAG, 'org.opencontainers.image.ref.name': 'x' } }] });
  const symlinks: [string, string][] = [];
  let layerPaths = layers.map(blobName);
  if (opts.legacySymlinks) {
    layerPaths = layers.map((l, i) => { symlinks.push([`legacy${i}/layer.tar`, `../${blobName(l)}`]); return `legacy${i}/layer.tar`; });
  }
  const dockerManifest = opts.dockerManifest ? json([{ Config: blobName(cfg), RepoTags: [TAG], Layers: layerPaths }]) : undefined;
  return { blobs, index, dockerManifest, symlinks };
}

function writeArchive(file: string, l: Layout): void {
  const parts: Buffer[] = [member('blobs/', Buffer.alloc(0), 'dir'), member('blobs/sha256/', Buffer.alloc(0), 'dir')];
  for (const [name, b] of l.blobs) parts.push(member(name, b));
  for (const [name, target] of l.symlinks ?? []) parts.push(member(`${path.dirname(name)}/`, Buffer.alloc(0), 'dir'), member(name, Buffer.alloc(0), 'symlink', target));
  parts.push(member('index.json', l.index), member('oci-layout', json({ imageLayoutVersion: '1.0.0' })));
  if (l.dockerManifest) parts.push(member('manifest.json', l.dockerManifest));
  parts.push(END_OF_ARCHIVE);
  fs.writeFileSync(file, Buffer.concat(parts));
}

function writeDir(dir: string, l: Layout): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [name, b] of l.blobs) fs.writeFileSync(path.join(dir, name), b);
  fs.writeFileSync(path.join(dir, 'index.json'), l.index);
  fs.writeFileSync(path.join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
}

const zstd = (b: Buffer) => execFileSync('zstd', ['-q', '-c'], { input: b });
const gzip = (b: Buffer) => zlib.gzipSync(b);

let legacyDiffId: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-formats-`));
  fs.writeFileSync(path.join(work, 'legacy.tar'), legacyArchive(spec));
  const r = await flattenToArchive({ source: path.join(work, 'legacy.tar'), output: path.join(work, 'legacy-flat.tar') });
  legacyDiffId = r.diffId;
});

afterAll(async () => {
  await removeImages([TAG]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function flatLayer(archive: string): { offset: number; size: number } {
  const idx = indexTarFile(archive);
  const mm = idx.get('manifest.json')!;
  const manifest = JSON.parse(fs.readFileSync(archive).subarray(mm.offset, mm.offset + mm.size).toString());
  return idx.get(manifest[0].Layers[0])!;
}

describe('input formats', () => {
  it('legacy archive: flattened layer equals docker load + export of the same archive', async () => {
    await execa('docker', ['load', '-i', path.join(work, 'legacy.tar')]);
    const oracle = await exportTree(TAG);
    const out = path.join(work, 'legacy-flat.tar');
    const { offset, size } = flatLayer(out);
    const flat = await treeFromTarFile(out, offset, size);
    expect(diffTrees(oracle, flat, { groups: true, ignore: (p) => p === 'etc' && !flat.has('etc') })).toEqual([]);
    expect(flat.get('usr/lib/libz.so')?.hash).toBeDefined();
    expect(flat.get('bin/tool4')?.mode).toBe(0o4755); // the other side of a replaced hardlink keeps the old inode
    // opaque marker after same-layer entries: those survive, the lower data/x/1 does not
    expect(flat.get('data/x/2')?.hash).toBeDefined();
    expect(flat.has('data/x/1')).toBe(false);
    expect(flat.get('bin/tool6')?.group).toBe('bin/tool5');
  });

  const variants: [string, () => string][] = [
    ['Docker 25+ archive (blobs, index.json, manifest.json)', () => { const f = path.join(work, 'd25.tar'); writeArchive(f, ociLayout(spec, (b) => b, { dockerManifest: true })); return f; }],
    ['Docker 25+ archive with legacy paths as symlinks', () => { const f = path.join(work, 'd25s.tar'); writeArchive(f, ociLayout(spec, (b) => b, { dockerManifest: true, legacySymlinks: true })); return f; }],
    ['containerd-store archive (gzip layers, nested index, manifest.json)', () => { const f = path.join(work, 'ctrd.tar'); writeArchive(f, ociLayout(spec, gzip, { nested: true, dockerManifest: true, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' })); return f; }],
    ['OCI archive without manifest.json (nested index, gzip)', () => { const f = path.join(work, 'oci.tar'); writeArchive(f, ociLayout(spec, gzip, { nested: true })); return f; }],
    ['OCI layout directory with zstd layers (media type says plain tar)', () => { const d = path.join(work, 'oci-zstd'); writeDir(d, ociLayout(spec, zstd, {})); return d; }],
  ];
  for (const [name, make] of variants) {
    it(`${name} flattens to the same layer`, async () => {
      const src = make();
      const r = await flattenToArchive({ source: src, output: path.join(work, 'out.tar') });
      expect(r.diffId).toBe(legacyDiffId);
      expect(r.ref).toBe(`${TAG}-flat`);
    });
  }

  it('a layer whose DiffID does not match is refused, naming the layer, leaving no output', async () => {
    const bad = { ...spec, diffIds: spec.layers.map((l, i) => `sha256:${i === 1 ? '0'.repeat(64) : sha256hex(l)}`) };
    const src = path.join(work, 'bad.tar');
    fs.writeFileSync(src, legacyArchive(bad));
    const out = path.join(work, 'bad-out.tar');
    await expect(flattenToArchive({ source: src, output: out })).rejects.toSatisfy((e: unknown) => e instanceof UsageError && e.where!.includes('layer 2 (l1/layer.tar)') && e.message.includes('DiffID mismatch'));
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(work).filter((f) => f.includes('gridforge-tmp'))).toEqual([]);
  });

  it('a gzip layer whose uncompressed stream does not match its DiffID is refused', async () => {
    const l = ociLayout({ ...spec, diffIds: spec.layers.map((x, i) => `sha256:${sha256hex(i === 2 ? Buffer.concat([x, Buffer.alloc(512)]) : x)}`) }, gzip, { dockerManifest: true });
    const src = path.join(work, 'badgz.tar');
    writeArchive(src, l);
    await expect(flattenToArchive({ source: src, output: path.join(work, 'x.tar') })).rejects.toMatchObject({ where: expect.stringMatching(/^layer 3 \(blobs\/sha256\//) });
  });
});
