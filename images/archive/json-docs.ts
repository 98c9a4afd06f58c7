/**
 * The JSON documents of an image input, parsed and checked for the shape the readers rely on:
 * docker `manifest.json`, OCI `index.json` / image indexes, image manifests, descriptors and the
 * image config. Bad JSON or a wrong shape is a UsageError naming the member or blob and the key,
 * never a raw SyntaxError or TypeError. A document read through a digest must hash to it.
 */
import { UsageError } from '../../base/errors.ts';
import { sha256, type ImageConfig } from './image-source.ts';

const REEXPORT = 'The image input is corrupted or was not written by docker save / an OCI tool; export it again.';

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string };
  annotations?: Record<string, string>;
}

export interface DockerManifestEntry {
  Config: string;
  Layers: string[];
  RepoTags: string[];
}

export function parseJson(buf: Buffer, where: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new UsageError(`not valid JSON (${(e as Error).message})`, { where, hint: REEXPORT });
  }
}

function bad(where: string, msg: string): never {
  throw new UsageError(msg, { where, hint: REEXPORT });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** A content descriptor: `digest` (sha256 only), optional `size`, `mediaType`, `platform`, `annotations`. */
export function checkDescriptor(v: unknown, where: string, key: string): Descriptor {
  if (!isObject(v)) bad(where, `${key} is not a descriptor object`);
  if (typeof v.digest !== 'string') bad(where, `${key}.digest is missing`);
  if (!DIGEST.test(v.digest)) bad(where, `${key}.digest ${JSON.stringify(v.digest)} is not a sha256 digest (sha256:<64 hex>); only sha256 is supported`);
  if (v.size !== undefined && !(Number.isSafeInteger(v.size) && (v.size as number) >= 0)) bad(where, `${key}.size is not a byte count`);
  if (v.mediaType !== undefined && typeof v.mediaType !== 'string') bad(where, `${key}.mediaType is not a string`);
  if (v.platform !== undefined && !isObject(v.platform)) bad(where, `${key}.platform is not an object`);
  if (v.annotations !== undefined && !isObject(v.annotations)) bad(where, `${key}.annotations is not an object`);
  return v as unknown as Descriptor;
}

/** An OCI index (or Docker manifest list): `manifests` must be an array of descriptors. */
export function checkIndex(v: unknown, where: string): { manifests: Descriptor[] } {
  if (!isObject(v)) bad(where, 'is not a JSON object (an image index)');
  if (v.manifests === undefined) return { manifests: [] };
  if (!Array.isArray(v.manifests)) bad(where, 'manifests is not an array');
  return { manifests: v.manifests.map((m, i) => checkDescriptor(m, where, `manifests[${i}]`)) };
}

/** An image manifest: `config` descriptor and `layers` descriptors. */
export function checkManifest(v: unknown, where: string): { config: Descriptor; layers: Descriptor[] } {
  if (!isObject(v)) bad(where, 'is not a JSON object (an image manifest)');
  if (!Array.isArray(v.layers)) bad(where, 'layers is missing or not an array');
  return { config: checkDescriptor(v.config, where, 'config'), layers: v.layers.map((l, i) => checkDescriptor(l, where, `layers[${i}]`)) };
}

/** docker save `manifest.json`: an array whose first entry names Config and Layers (member paths). */
export function checkDockerManifest(v: unknown, where: string): DockerManifestEntry {
  if (!Array.isArray(v) || v.length === 0) throw new UsageError('manifest.json lists no image', { where, hint: 'Export one image with docker save <ref>.' });
  const m = v[0];
  if (!isObject(m)) bad(where, '[0] is not an object');
  if (typeof m.Config !== 'string' || m.Config === '') bad(where, '[0].Config is missing or not a string');
  if (!Array.isArray(m.Layers) || !m.Layers.every((l) => typeof l === 'string' && l !== '')) bad(where, '[0].Layers is missing or not an array of member paths');
  if (m.RepoTags !== undefined && m.RepoTags !== null && !(Array.isArray(m.RepoTags) && m.RepoTags.every((t) => typeof t === 'string'))) bad(where, '[0].RepoTags is not an array of strings');
  return { Config: m.Config, Layers: m.Layers as string[], RepoTags: (m.RepoTags as string[] | null | undefined) ?? [] };
}

/** The image config: an object; `rootfs.diff_ids` (if any) sha256 digests; `config` (if any) an object. */
export function checkConfig(v: unknown, where: string): ImageConfig {
  if (!isObject(v)) bad(where, 'is not a JSON object (an image config)');
  if (v.config !== undefined && v.config !== null && !isObject(v.config)) bad(where, 'config is not an object');
  if (v.rootfs !== undefined) {
    if (!isObject(v.rootfs)) bad(where, 'rootfs is not an object');
    const ids = v.rootfs.diff_ids;
    if (!Array.isArray(ids)) bad(where, 'rootfs.diff_ids is missing or not an array');
    ids.forEach((d, i) => { if (typeof d !== 'string' || !DIGEST.test(d)) bad(where, `rootfs.diff_ids[${i}] is not a sha256 digest`); });
  }
  return v as ImageConfig;
}

/** A blob read through its digest (and size, when the descriptor gives one) must match both. */
export function checkBlob(buf: Buffer, digest: string, size: number | undefined, where: string): void {
  if (size !== undefined && buf.length !== size) {
    throw new UsageError(`blob is ${buf.length} bytes but its descriptor says ${size}`, { where, hint: 'The blob was altered or swapped; re-export the image from a trusted source.' });
  }
  const got = sha256(buf);
  if (got !== digest) throw new UsageError(`blob content hashes to ${got}, not to its digest ${digest}`, { where, hint: 'The blob was altered or swapped; re-export the image from a trusted source.' });
}

/** `blobs/sha256/<hex>` (Docker 25+, OCI) and `<hex>.json` (legacy docker save configs) are named by their digest. */
export function digestFromName(name: string): string | undefined {
  const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name) ?? /^([0-9a-f]{64})\.json$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}
