/**
 * The flattened image's layer gzipped before a push (registries and engines expect compressed
 * layers; an uncompressed one costs every puller its full size in transfer): the OCI layout that
 * images/flatten writes (one manifest, one `application/vnd.oci.image.layer.v1.tar` layer) gets
 * a `...tar+gzip` layer blob and a new manifest naming it; the config keeps the DiffID (the
 * digest of the uncompressed layer, OCI image-spec config.md), so the image is the same image.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GridforgeError } from '../../base/errors.ts';
import { readBoundedFile } from '../../base/safe-fs.ts';
import { gzipFile } from '../archive/compression.ts';
import { sha256 } from '../archive/image-source.ts';
import { MAX_INDEX_JSON, MAX_MANIFEST_JSON } from '../archive/limits.ts';
import type { Descriptor } from './manifest.ts';

const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const blobFile = (dir: string, digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

export async function gzipLayoutLayer(dir: string): Promise<{ layerDigest: string; layerSize: number }> {
  const indexFile = path.join(dir, 'index.json');
  const index = JSON.parse(readBoundedFile(indexFile, 'index.json', MAX_INDEX_JSON).toString('utf8')) as { manifests: Descriptor[] };
  const md = index.manifests[0];
  const manifest = JSON.parse(readBoundedFile(blobFile(dir, md.digest), 'manifest', MAX_MANIFEST_JSON).toString('utf8')) as { layers: Descriptor[] };
  if (manifest.layers.length !== 1 || manifest.layers[0].mediaType !== OCI_LAYER) {
    throw new GridforgeError('the flattened layout does not hold one uncompressed layer', { where: dir, hint: 'This is a gridforge defect: image flatten --oci writes one.' });
  }
  const plain = manifest.layers[0];
  const tmp = path.join(dir, 'blobs', 'sha256', '.layer.gz.tmp');
  const gz = await gzipFile(blobFile(dir, plain.digest), tmp);
  fs.renameSync(tmp, blobFile(dir, gz.digest));
  fs.rmSync(blobFile(dir, plain.digest));
  manifest.layers[0] = { ...plain, mediaType: `${OCI_LAYER}+gzip`, digest: gz.digest, size: gz.size };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(bytes);
  fs.writeFileSync(blobFile(dir, digest), bytes);
  fs.rmSync(blobFile(dir, md.digest));
  index.manifests[0] = { ...md, digest, size: bytes.length };
  fs.writeFileSync(indexFile, JSON.stringify(index));
  return { layerDigest: gz.digest, layerSize: gz.size };
}
