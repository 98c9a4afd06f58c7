/** OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/...`). */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../scripts/lib/errors.ts';
import { sha256, type ImageConfig, type ImageSource } from './image-source.ts';
import { pickManifest, type BlobStore } from './oci-index.ts';

export function isOciLayout(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'oci-layout')) && fs.existsSync(path.join(dir, 'index.json'));
}

export function openOciLayout(dir: string): ImageSource {
  const blobPath = (d: string) => {
    if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new UsageError(`unsupported or malformed digest ${d}`, { where: dir, hint: 'Only sha256 digests are supported.' });
    return path.join(dir, 'blobs', 'sha256', d.slice(7));
  };
  const readJson = (file: string) => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`cannot read ${path.relative(dir, file)}: ${(e as Error).message}`, { where: dir, hint: 'The OCI layout is incomplete or corrupted.' });
    }
  };
  const store: BlobStore = {
    where: dir,
    readJson: (d) => readJson(blobPath(d)),
    locate: (d) => ({ file: blobPath(d), offset: 0, size: fs.statSync(blobPath(d)).size, label: `blobs/${d.replace(':', '/')}` }),
  };
  const { manifest, refName } = pickManifest(store, readJson(path.join(dir, 'index.json')));
  const configBytes = fs.readFileSync(blobPath(manifest.config.digest));
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw new UsageError(`config lists ${diffIds.length} diff_ids but the manifest ${manifest.layers.length} layers`, { where: dir, hint: 'The layout is inconsistent.' });
  const layers = manifest.layers.map((l, i) => {
    const loc = store.locate(l.digest);
    return { label: `layer ${i + 1} (${loc.label})`, file: loc.file, offset: 0, size: loc.size, diffId: diffIds[i] };
  });
  return { source: dir, kind: 'oci-layout', config, configBytes, configDigest: sha256(configBytes), repoTags: refName ? [refName] : [], layers, close: async () => {} };
}
