/**
 * OCI image-layout logic over any blob store (a directory or a tar archive): index.json ->
 * (nested indexes) -> manifest -> config + layers. Picks linux/amd64 when an index lists several
 * platforms, else the first manifest.
 */
import { UsageError } from '../../scripts/lib/errors.ts';

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string };
  annotations?: Record<string, string>;
}

export interface BlobStore {
  where: string;
  /** Read a (small) blob whole. */
  readJson(digest: string): unknown;
  /** Locate a (large) blob: file + byte range. */
  locate(digest: string): { file: string; offset: number; size: number; label: string };
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

export function pickManifest(store: BlobStore, index: { manifests?: Descriptor[] }, depth = 0): { manifest: { config: Descriptor; layers: Descriptor[] }; refName?: string } {
  if (depth > 4) throw new UsageError('index nesting deeper than 4 levels', { where: store.where, hint: 'Re-export the image with docker save or skopeo.' });
  const ms = index.manifests ?? [];
  if (ms.length === 0) throw new UsageError('index.json lists no manifests', { where: store.where, hint: 'Pass an OCI layout that contains an image.' });
  const pick = ms.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64') ?? ms.find((m) => !m.platform || m.platform.os !== 'unknown') ?? ms[0];
  const doc = store.readJson(pick.digest) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  const refName = pick.annotations?.['io.containerd.image.name'] ?? pick.annotations?.['org.opencontainers.image.ref.name'];
  if (INDEX_TYPES.has(pick.mediaType ?? '') || (doc.manifests && !doc.config)) {
    const inner = pickManifest(store, doc, depth + 1);
    return { manifest: inner.manifest, refName: refName ?? inner.refName };
  }
  if (!doc.config || !Array.isArray(doc.layers)) throw new UsageError(`blob ${pick.digest} is not an image manifest`, { where: store.where, hint: 'Pass a docker-save archive or an OCI image layout.' });
  return { manifest: { config: doc.config, layers: doc.layers }, refName };
}
