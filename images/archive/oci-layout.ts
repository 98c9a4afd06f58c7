/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/...`). Every file must
 * be a regular file (layout-file.ts); JSON documents are size-bounded and hashed against their
 * descriptors; layer blobs are hashed while they are scanned (layer-scan.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { sha256, type ImageSource, type LayerBlob } from './image-source.ts';
import { checkBlob, checkConfig, parseJson, type Descriptor } from './json-docs.ts';
import { readLayoutFile, statLayoutFile } from './layout-file.ts';
import { MAX_CONFIG_JSON, MAX_INDEX_JSON, MAX_OCI_LAYOUT } from './limits.ts';
import { pickManifest, type BlobStore } from './oci-index.ts';

export function isOciLayout(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'oci-layout')) && fs.existsSync(path.join(dir, 'index.json'));
}

const blobRel = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;

export function openOciLayout(dir: string): ImageSource {
  const layout = parseJson(readLayoutFile(dir, 'oci-layout', MAX_OCI_LAYOUT), `${dir}: oci-layout`);
  if (typeof layout !== 'object' || layout === null || Array.isArray(layout)) throw new UsageError('oci-layout is not a JSON object', { where: `${dir}: oci-layout`, hint: 'It should read {"imageLayoutVersion": "1.0.0"}.' });
  const readBlob = (d: Descriptor, max: number): Buffer => {
    const buf = readLayoutFile(dir, blobRel(d.digest), max);
    checkBlob(buf, d.digest, d.size, `${dir}: ${blobRel(d.digest)}`);
    return buf;
  };
  const store: BlobStore = {
    where: dir,
    readJson: (d, max) => parseJson(readBlob(d, max), `${dir}: ${blobRel(d.digest)}`),
    label: (digest) => `${dir}: ${blobRel(digest)}`,
  };
  const { manifest, refName } = pickManifest(store, parseJson(readLayoutFile(dir, 'index.json', MAX_INDEX_JSON), `${dir}: index.json`), `${dir}: index.json`);
  const configBytes = readBlob(manifest.config, MAX_CONFIG_JSON);
  const config = checkConfig(parseJson(configBytes, `${dir}: ${blobRel(manifest.config.digest)} (config)`), `${dir}: ${blobRel(manifest.config.digest)} (config)`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw new UsageError(`config lists ${diffIds.length} diff_ids but the manifest ${manifest.layers.length} layers`, { where: dir, hint: 'The layout is inconsistent.' });
  const layers: LayerBlob[] = manifest.layers.map((l, i) => {
    const rel = blobRel(l.digest);
    const st = statLayoutFile(dir, rel);
    if (l.size !== undefined && st.size !== l.size) throw new UsageError(`blob is ${st.size} bytes but its descriptor says ${l.size}`, { where: `${dir}: ${rel}`, hint: 'The blob was altered or swapped; re-export the image from a trusted source.' });
    return { label: `layer ${i + 1} (${rel})`, file: path.join(dir, rel), offset: 0, size: st.size, diffId: diffIds[i], digest: l.digest, expect: { dev: st.dev, ino: st.ino, size: st.size } };
  });
  return { source: dir, kind: 'oci-layout', config, configBytes, configDigest: sha256(configBytes), repoTags: refName ? [refName] : [], layers, close: async () => {} };
}
