/**
 * Writers for what carries the flattened layer: a docker-load stream, a docker-save archive file
 * (Docker 25 layout: OCI blobs + index.json + manifest.json, which Docker 20.10 loads too) and an
 * OCI image layout directory. Small JSON members are built in memory; the layer is streamed.
 */
import { encodeHeader, END_OF_ARCHIVE, padded } from '../archive/tar-format.ts';
import type { ImageConfig } from '../archive/image-source.ts';
import { sha256 } from '../archive/image-source.ts';

export const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MT_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export function memberHeader(name: string, size: number): Buffer {
  return encodeHeader({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() });
}

export function member(name: string, data: Buffer): Buffer {
  return Buffer.concat([memberHeader(name, data.length), data, Buffer.alloc(padded(data.length) - data.length)]);
}

export function dirMember(name: string): Buffer {
  return encodeHeader({ path: `${name}/`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() });
}

export function padding(size: number): Buffer {
  return Buffer.alloc(padded(size) - size);
}

export { END_OF_ARCHIVE };

export interface Blobs {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  index: Buffer;
  ociLayout: Buffer;
  /** docker's manifest.json (Config / RepoTags / Layers paths). */
  dockerManifest: Buffer;
}

export function hex(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Split a reference into repository and tag (digest parts dropped). */
export function splitRef(ref: string): { repo: string; tag: string } {
  const noDigest = ref.split('@')[0];
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  if (colon > slash) return { repo: noDigest.slice(0, colon), tag: noDigest.slice(colon + 1) };
  return { repo: noDigest, tag: 'latest' };
}

export function makeBlobs(config: ImageConfig, layerDigest: string, layerSize: number, tag: string | undefined, layerPath: string): Blobs {
  const configBuf = Buffer.from(JSON.stringify(config));
  const configDigest = sha256(configBuf);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    config: { mediaType: MT_CONFIG, digest: configDigest, size: configBuf.length },
    layers: [{ mediaType: MT_LAYER, digest: layerDigest, size: layerSize }],
  }));
  const manifestDigest = sha256(manifest);
  const annotations = tag ? { 'io.containerd.image.name': tag, 'org.opencontainers.image.ref.name': splitRef(tag).tag } : undefined;
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT_INDEX,
    manifests: [{ mediaType: MT_MANIFEST, digest: manifestDigest, size: manifest.length, ...(annotations ? { annotations } : {}) }],
  }));
  const dockerManifest = Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${hex(configDigest)}`, RepoTags: tag ? [tag] : null, Layers: [layerPath] }]));
  return { config: configBuf, configDigest, manifest, manifestDigest, index, ociLayout: Buffer.from('{"imageLayoutVersion":"1.0.0"}'), dockerManifest };
}
