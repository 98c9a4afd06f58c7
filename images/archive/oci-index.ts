/**
 * OCI image-layout logic over any blob store (a directory or a tar archive): index.json ->
 * (nested indexes) -> manifest -> config + layers. Picks linux/amd64 when an index lists several
 * platforms, else the first manifest. Every document is read through its descriptor (bounded,
 * digest and size checked by the store) and its shape checked (json-docs.ts).
 */
import { UsageError } from '../../base/errors.ts';
import { checkIndex, checkManifest, type Descriptor } from './json-docs.ts';
import { MAX_MANIFEST_JSON } from './limits.ts';

export type { Descriptor };

export interface BlobStore {
  where: string;
  /** Read a (small) JSON blob whole: at most `max` bytes, digest (and size) checked, parsed. */
  readJson(d: Descriptor, max: number): unknown;
  /** How a blob is named in errors. */
  label(digest: string): string;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

export function pickManifest(store: BlobStore, indexDoc: unknown, indexWhere: string, depth = 0): { manifest: { config: Descriptor; layers: Descriptor[] }; refName?: string } {
  if (depth > 4) throw new UsageError('index nesting deeper than 4 levels', { where: indexWhere, hint: 'Re-export the image with docker save or skopeo.' });
  const ms = checkIndex(indexDoc, indexWhere).manifests;
  if (ms.length === 0) throw new UsageError('the index lists no manifests', { where: indexWhere, hint: 'Pass an OCI layout that contains an image.' });
  const pick = ms.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64') ?? ms.find((m) => !m.platform || m.platform.os !== 'unknown') ?? ms[0];
  const where = store.label(pick.digest);
  const doc = store.readJson(pick, MAX_MANIFEST_JSON) as { manifests?: unknown; config?: unknown } | null;
  const refName = pick.annotations?.['io.containerd.image.name'] ?? pick.annotations?.['org.opencontainers.image.ref.name'];
  const isObj = typeof doc === 'object' && doc !== null;
  if (INDEX_TYPES.has(pick.mediaType ?? '') || (isObj && doc.manifests !== undefined && doc.config === undefined)) {
    const inner = pickManifest(store, doc, where, depth + 1);
    return { manifest: inner.manifest, refName: refName ?? inner.refName };
  }
  return { manifest: checkManifest(doc, where), refName };
}
