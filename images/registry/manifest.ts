/**
 * Manifests from a registry: fetched by tag or digest with every supported media type in Accept,
 * bounded (images/archive/limits.ts), hashed (must equal the digest asked for, and the registry's
 * Docker-Content-Digest), typed by Content-Type (or the document's mediaType), and, for an image
 * index / manifest list, the manifest of the requested platform fetched by its digest. Docker
 * schema 1 and other media types are refused by name.
 */
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { sha256 } from '../archive/image-source.ts';
import { MAX_CONFIG_JSON, MAX_MANIFEST_JSON } from '../archive/limits.ts';
import type { RegistryClient } from './client.ts';
import { formatPlatform, matchesPlatform, type Platform } from './platform.ts';
import { discard, readBody } from './transport.ts';

export const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const IMAGE_TYPES = new Set([MT_OCI_MANIFEST, MT_DOCKER_MANIFEST]);
const INDEX_TYPES = new Set([MT_OCI_INDEX, MT_DOCKER_LIST]);
const ACCEPT = [MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST].join(', ');

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: Partial<Platform>;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface FetchedManifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
  doc: { mediaType?: string; config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] };
}

export interface ResolvedImage {
  manifest: FetchedManifest;
  /** The index the manifest was picked from (a multi-platform reference). */
  index?: FetchedManifest;
}


export async function fetchManifest(client: RegistryClient, reference: string, where: string): Promise<FetchedManifest> {
  const res = await client.request(client.path('manifests', reference), { method: 'GET', headers: { Accept: ACCEPT } }, `manifest ${reference}`);
  if (res.status === 404) {
    discard(res);
    throw new UsageError(`registry ${client.ref.registry} has no manifest ${reference} in ${client.ref.repository}`, { where, hint: `Check the ${reference.startsWith('sha256:') ? 'digest' : 'tag'} (skopeo list-tags docker://${client.ref.registry}/${client.ref.repository} lists the tags).` });
  }
  if (res.status !== 200) {
    discard(res);
    throw new GridforgeError(`registry ${client.ref.registry} answered HTTP ${res.status} for manifest ${reference}`, { where, hint: 'Check the registry.' });
  }
  const bytes = await readBody(res, MAX_MANIFEST_JSON, where);
  const digest = sha256(bytes);
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new GridforgeError(`manifest ${reference} from ${client.ref.registry} hashes to ${digest}`, { where, hint: 'The registry served other content than the digest names (tampered or broken storage); nothing was written.' });
  }
  const claimed = res.headers['docker-content-digest'];
  if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) {
    throw new GridforgeError(`manifest ${reference} from ${client.ref.registry} hashes to ${digest}, the registry says ${claimed}`, { where, hint: 'The registry storage is inconsistent; nothing was written.' });
  }
  let doc: FetchedManifest['doc'];
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UsageError(`manifest ${reference} is not JSON`, { where, hint: 'The registry holds something else under this reference.' });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError(`manifest ${reference} is not a JSON object`, { where, hint: 'The registry holds something else under this reference.' });
  const header = String(res.headers['content-type'] ?? '').split(';')[0].trim();
  const mediaType = IMAGE_TYPES.has(header) || INDEX_TYPES.has(header) ? header : (doc.mediaType ?? header);
  if (!IMAGE_TYPES.has(mediaType) && !INDEX_TYPES.has(mediaType)) {
    throw new UsageError(`manifest ${reference} has the unsupported media type ${JSON.stringify(mediaType || '(none)')}`, { where, hint: `Supported: ${ACCEPT}. Re-push the image with a current docker, buildah or skopeo.` });
  }
  return { mediaType, bytes, digest, doc };
}

function checkDescriptor(d: unknown, where: string, what: string): Descriptor {
  const o = d as Descriptor | null;
  if (typeof o !== 'object' || o === null || typeof o.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(o.digest) || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new UsageError(`${what} is not a descriptor with a sha256 digest and a size`, { where, hint: 'The manifest is malformed; only sha256 digests are supported.' });
  }
  return o;
}

/**
 * The image manifest of `reference` for `platform` (through an index when the reference names one).
 * A single-platform manifest is taken as it is, unless `strict`: then its config's os/architecture
 * must match (one more small request), and a mismatch gives `undefined`.
 */
export async function resolveImage(client: RegistryClient, reference: string, platform: Platform, where: string): Promise<ResolvedImage>;
export async function resolveImage(client: RegistryClient, reference: string, platform: Platform, where: string, strict: true): Promise<ResolvedImage | undefined>;
export async function resolveImage(client: RegistryClient, reference: string, platform: Platform, where: string, strict = false): Promise<ResolvedImage | undefined> {
  const top = await fetchManifest(client, reference, where);
  if (IMAGE_TYPES.has(top.mediaType)) {
    const manifest = checkImage(top, where);
    if (strict) {
      const res = await client.request(client.path('blobs', manifest.doc.config!.digest), { method: 'GET' }, 'image config');
      const body = await readBody(res, MAX_CONFIG_JSON, where);
      if (res.status !== 200 || sha256(body) !== manifest.doc.config!.digest) throw new GridforgeError(`config ${manifest.doc.config!.digest} of ${where} could not be read intact (HTTP ${res.status})`, { where, hint: 'Check the registry.' });
      const cfg = JSON.parse(body.toString('utf8')) as Partial<Platform>;
      if (!matchesPlatform(platform, cfg)) return undefined;
    }
    return { manifest };
  }
  const ms = Array.isArray(top.doc.manifests) ? top.doc.manifests.map((m, i) => checkDescriptor(m, where, `manifests[${i}]`)) : [];
  const pick = ms.find((m) => matchesPlatform(platform, m.platform));
  if (!pick && strict) return undefined;
  if (!pick) {
    throw new UsageError(`${where} has no image for ${formatPlatform(platform)}`, { where, hint: `It has: ${ms.map((m) => formatPlatform(m.platform)).join(', ') || 'no manifests'}. Pass --platform with one of them.` });
  }
  const inner = await fetchManifest(client, pick.digest, `${where} (${formatPlatform(platform)}: ${pick.digest})`);
  if (!IMAGE_TYPES.has(inner.mediaType)) throw new UsageError(`the ${formatPlatform(platform)} entry of ${where} is not an image manifest (${inner.mediaType})`, { where, hint: 'Nested indexes are not supported from registries.' });
  if (inner.bytes.length !== pick.size) throw new GridforgeError(`manifest ${pick.digest} is ${inner.bytes.length} bytes, the index says ${pick.size}`, { where, hint: 'The registry storage is inconsistent; nothing was written.' });
  return { manifest: checkImage(inner, where), index: top };
}

function checkImage(m: FetchedManifest, where: string): FetchedManifest {
  checkDescriptor(m.doc.config, where, 'config');
  if (!Array.isArray(m.doc.layers)) throw new UsageError('the image manifest has no layers list', { where, hint: 'The manifest is malformed.' });
  m.doc.layers.forEach((l, i) => {
    checkDescriptor(l, where, `layers[${i}]`);
    if (l.urls?.length || /foreign|nondistributable/.test(l.mediaType ?? '')) {
      throw new UsageError(`layer ${i + 1} is a foreign (non-distributable) layer: ${l.mediaType}`, { where, hint: 'Images with foreign layers (Windows base layers) are not supported.' });
    }
  });
  return m;
}

/**
 * The manifest digest of `reference` for each of `platforms` (undefined: no image for it), with
 * as few requests as possible, for planning: the top manifest once; for an index, the digests
 * its descriptors name (the manifests themselves are fetched, and checked, when the image is
 * pulled); for a single image manifest, its config once (os/architecture must match), once per
 * config digest when the caller passes `configs` (the client's repository: many tags of one image).
 */
export async function resolveDigests(client: RegistryClient, reference: string, platforms: Platform[], where: string, configs?: Map<string, Promise<Partial<Platform>>>): Promise<(string | undefined)[]> {
  const top = await fetchManifest(client, reference, where);
  if (INDEX_TYPES.has(top.mediaType)) {
    const ms = Array.isArray(top.doc.manifests) ? top.doc.manifests.map((m, i) => checkDescriptor(m, where, `manifests[${i}]`)) : [];
    return platforms.map((p) => ms.find((m) => matchesPlatform(p, m.platform))?.digest);
  }
  const manifest = checkImage(top, where);
  const digest = manifest.doc.config!.digest;
  let cfg = configs?.get(digest);
  if (!cfg) {
    cfg = readConfigPlatform(client, digest, where);
    configs?.set(digest, cfg);
    cfg.catch(() => configs?.delete(digest)); // a failure is not remembered (the caller sees it)
  }
  const platformOf = await cfg;
  return platforms.map((p) => (matchesPlatform(p, platformOf) ? manifest.digest : undefined));
}

async function readConfigPlatform(client: RegistryClient, digest: string, where: string): Promise<Partial<Platform>> {
  const res = await client.request(client.path('blobs', digest), { method: 'GET' }, 'image config');
  const body = await readBody(res, MAX_CONFIG_JSON, where);
  if (res.status !== 200 || sha256(body) !== digest) throw new GridforgeError(`config ${digest} of ${where} could not be read intact (HTTP ${res.status})`, { where, hint: 'Check the registry.' });
  return JSON.parse(body.toString('utf8')) as Partial<Platform>;
}
