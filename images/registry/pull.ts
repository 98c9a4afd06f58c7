/**
 * A registry image into an OCI image layout directory (a random exclusive temporary in
 * `tmpDir`, removed on SIGINT/SIGTERM and on any failure): the platform's manifest, its config
 * and layers (two downloads at a time, each digest-checked by blob.ts), and an index.json naming
 * the reference. images/archive/oci-layout.ts then reads it like any layout, so every layer is
 * checked again against the config's DiffIDs while it is scanned.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { UsageError } from '../../base/errors.ts';
import { noProgress, type Progress } from '../../base/progress.ts';
import { sha256 } from '../archive/image-source.ts';
import type { Prescan } from '../archive/layer-scan.ts';
import { MAX_CONFIG_JSON, resolveScanLimits } from '../archive/limits.ts';
import { downloadBlob } from './blob.ts';
import { downloadInflated } from './inflate-blob.ts';
import { RegistryClient } from './client.ts';
import { MT_OCI_INDEX, resolveImage, type Descriptor } from './manifest.ts';
import { formatPlatform, parsePlatform } from './platform.ts';
import { parseRegistryRef, refName, type RegistryRef } from './reference.ts';

export interface PullOptions {
  tmpDir?: string;
  /** Largest uncompressed layer (bytes); default the scan limits' (images/archive/limits.ts). */
  maxLayerSize?: number;
  /** os/arch[/variant]; default linux/amd64. */
  platform?: string;
  onProgress?: Progress;
}

export interface PulledLayout {
  dir: string;
  ref: RegistryRef;
  /** Digest of the image manifest pulled (of the platform's manifest for an index). */
  manifestDigest: string;
  /** Digest of the index the manifest was picked from, if any. */
  indexDigest?: string;
  /** Scans of the layers inflated while they downloaded, by DiffID (images/archive takes them instead of a second pass). */
  prescans: Map<string, Prescan>;
  close(): void;
}

/** gzip layer media types and their plain counterparts (OCI image-spec media-types.md; Docker image manifest v2.2). */
const PLAIN_OF: Record<string, string> = {
  'application/vnd.oci.image.layer.v1.tar+gzip': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.docker.image.rootfs.diff.tar',
};
const GZIP_LAYER_TYPES = new Set(Object.keys(PLAIN_OF));

/**
 * The config's DiffIDs when they can name plain layers (one sha256 digest per layer), else
 * undefined (layers are then stored as they come; the scan reports what is wrong with the config).
 */
function diffIdsOf(configFile: string, layers: number): string[] | undefined {
  try {
    const ids = (JSON.parse(fs.readFileSync(configFile, 'utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
    if (!Array.isArray(ids) || ids.length !== layers || !ids.every((x) => typeof x === 'string' && /^sha256:[0-9a-f]{64}$/.test(x))) return undefined;
    return ids as string[];
  } catch {
    return undefined;
  }
}

const blobPath = (dir: string, digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function inPairs<T>(items: T[], fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const results = await Promise.allSettled([worker(), worker()]);
  const bad = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (bad) throw bad.reason;
}

export async function pullToLayout(source: string, opts: PullOptions = {}): Promise<PulledLayout> {
  const ref = parseRegistryRef(source);
  const platform = parsePlatform(opts.platform);
  const say = opts.onProgress ?? noProgress;
  const client = new RegistryClient(ref);
  const where = `docker://${ref.display}`;
  const { manifest, index } = await resolveImage(client, ref.digest ?? ref.tag!, platform, where);
  say(`  ${where}: manifest ${manifest.digest}${index ? ` (${formatPlatform(platform)} of index ${index.digest})` : ''}`);
  const parent = opts.tmpDir ?? os.tmpdir();
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(parent, 'gridforge-pull-'));
  } catch (e) {
    throw new UsageError(`cannot create a download directory in ${parent} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { where: opts.tmpDir ? '--tmp-dir' : 'TMPDIR', hint: 'Pass --tmp-dir <existing writable directory>.' });
  }
  const forget = removeOnInterrupt(dir);
  const close = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    forget();
  };
  try {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(blobPath(dir, manifest.digest), manifest.bytes);
    const config = manifest.doc.config!;
    if (config.size > MAX_CONFIG_JSON) throw new UsageError(`the image config is ${config.size} bytes (at most ${MAX_CONFIG_JSON})`, { where, hint: 'The image is malformed.' });
    await downloadBlob(client, config, blobPath(dir, config.digest), `${where} (config ${config.digest})`);
    const layers = manifest.doc.layers as Descriptor[];
    // gzip layers are inflated while they download (inflate-blob.ts), stored under their DiffID
    const diffIds = diffIdsOf(blobPath(dir, config.digest), layers.length);
    const maxBytes = resolveScanLimits({ maxLayerSize: opts.maxLayerSize }).maxLayerSize;
    const plainOf = new Map<string, { digest: string; size: number }>();
    const prescans = new Map<string, Prescan>();
    const seen = new Set<string>([config.digest, manifest.digest]);
    const unique = layers.map((l, i) => ({ l, i })).filter(({ l }) => !seen.has(l.digest) && seen.add(l.digest));
    let done = 0;
    await inPairs(unique, async ({ l, i }) => {
      const diffId = diffIds?.[i];
      if (diffId && GZIP_LAYER_TYPES.has(l.mediaType ?? '') && !seen.has(diffId)) {
        seen.add(diffId);
        const scan = await downloadInflated(client, l, blobPath(dir, diffId), `${where} (layer ${l.digest})`, { maxBytes, spaceDir: dir });
        plainOf.set(l.digest, { digest: diffId, size: scan.total });
        prescans.set(diffId, scan);
      } else await downloadBlob(client, l, blobPath(dir, l.digest), `${where} (layer ${l.digest})`);
      say(`  layer ${++done}/${unique.length} downloaded (${(l.size / 1048576).toFixed(1)} MiB, ${l.digest.slice(0, 19)})`);
    });
    // the layout names the plain layers: a manifest of its own, the registry's digest kept in PulledLayout
    let layoutManifest = { digest: manifest.digest, bytes: manifest.bytes };
    if (plainOf.size > 0) {
      const doc = { ...manifest.doc, layers: layers.map((l) => (plainOf.has(l.digest) ? { ...l, mediaType: PLAIN_OF[l.mediaType!], ...plainOf.get(l.digest)! } : l)) };
      const bytes = Buffer.from(JSON.stringify(doc));
      layoutManifest = { digest: sha256(bytes), bytes };
      fs.writeFileSync(blobPath(dir, layoutManifest.digest), bytes);
      for (const d of plainOf.keys()) fs.rmSync(blobPath(dir, d), { force: true });
    }
    const name = refName(ref);
    const annotations = name ? { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': ref.tag! } : undefined;
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_INDEX, manifests: [{ mediaType: manifest.mediaType, digest: layoutManifest.digest, size: layoutManifest.bytes.length, ...(annotations ? { annotations } : {}) }] }));
    return { dir, ref, manifestDigest: manifest.digest, indexDigest: index?.digest, prescans, close };
  } catch (e) {
    close();
    throw e;
  }
}
