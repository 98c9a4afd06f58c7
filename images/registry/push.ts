/**
 * An OCI image layout with one image (what images/flatten writes) into a registry: every blob
 * the registry lacks (HEAD) is uploaded monolithically (POST to open an upload, PUT with
 * `?digest=`, distribution spec "Pushing a blob monolithically"), the config and manifest last;
 * the registry's Docker-Content-Digest must equal the manifest's. A failed upload is retried from
 * a fresh upload session. Nothing is tagged until every blob is in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { noProgress, type Progress } from '../../base/progress.ts';
import { readBoundedFile } from '../../base/safe-fs.ts';
import { MAX_INDEX_JSON, MAX_MANIFEST_JSON } from '../archive/limits.ts';
import { RegistryClient } from './client.ts';
import type { Descriptor } from './manifest.ts';
import type { RegistryRef } from './reference.ts';
import { backoff, discard, NetworkError, readBody, sleep } from './transport.ts';

const blobFile = (dir: string, digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function hasBlob(client: RegistryClient, d: Descriptor): Promise<boolean> {
  const res = await client.request(client.path('blobs', d.digest), { method: 'HEAD' }, `blob ${d.digest}`);
  discard(res);
  return res.status === 200 && Number(res.headers['content-length'] ?? d.size) === d.size;
}

async function uploadOnce(client: RegistryClient, file: string, d: Descriptor): Promise<void> {
  const where = `${client.ref.registry}/${client.ref.repository}`;
  const start = await client.request(`/v2/${client.ref.repository}/blobs/uploads/`, { method: 'POST', bodyLength: 0 }, `upload of ${d.digest}`);
  discard(start);
  const location = start.headers.location;
  if (start.status !== 202 || !location) throw new GridforgeError(`registry ${client.ref.registry} did not open an upload (HTTP ${start.status})`, { where, hint: 'Check that the registry accepts pushes (storage writable, not read-only).' });
  const url = new URL(location, start.url);
  url.searchParams.set('digest', d.digest);
  const put = await client.request(url.href, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: () => fs.createReadStream(file), bodyLength: d.size }, `upload of ${d.digest}`);
  const text = (await readBody(put, 1 << 16, where)).toString('utf8');
  if (put.status !== 201) throw new GridforgeError(`registry ${client.ref.registry} refused blob ${d.digest} (HTTP ${put.status}${text ? `: ${text.trim().slice(0, 300)}` : ''})`, { where, hint: 'Check the registry log and its storage.' });
}

async function uploadBlob(client: RegistryClient, dir: string, d: Descriptor): Promise<boolean> {
  const file = blobFile(dir, d.digest);
  if (fs.statSync(file).size !== d.size) throw new UsageError(`blob ${d.digest} is not ${d.size} bytes`, { where: file, hint: 'The layout was changed after it was written.' });
  if (await hasBlob(client, d)) return false;
  for (let n = 1; ; n++) {
    try {
      await uploadOnce(client, file, d);
      return true;
    } catch (e) {
      if (!(e instanceof NetworkError) || n >= client.t.attempts) throw e;
      await sleep(backoff(client.t, n));
    }
  }
}

export interface PushResult {
  /** docker://registry/repository:tag */
  ref: string;
  /** Digest of the manifest in the registry. */
  digest: string;
  /** Blobs uploaded (the others were there already). */
  uploaded: number;
  bytes: number;
}

export async function pushLayout(dir: string, ref: RegistryRef, onProgress: Progress = noProgress): Promise<PushResult> {
  if (!ref.tag || ref.digest) throw new UsageError(`push needs a tag, not a digest: docker://${ref.display}`, { where: `docker://${ref.display}`, hint: 'Write docker://<registry>/<repository>:<tag>.' });
  const index = JSON.parse(readBoundedFile(path.join(dir, 'index.json'), 'index.json', MAX_INDEX_JSON).toString('utf8')) as { manifests: Descriptor[] };
  if (index.manifests?.length !== 1) throw new UsageError('the layout holds more than one image', { where: dir, hint: 'Push a flattened image (one manifest).' });
  const md = index.manifests[0];
  const manifestBytes = readBoundedFile(blobFile(dir, md.digest), 'manifest', MAX_MANIFEST_JSON);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { mediaType?: string; config: Descriptor; layers: Descriptor[] };
  const client = new RegistryClient(ref, 'pull,push');
  let uploaded = 0;
  let bytes = 0;
  for (const d of [...manifest.layers, manifest.config]) {
    onProgress(`  pushing ${d.digest.slice(0, 19)} (${(d.size / 1048576).toFixed(1)} MiB)`);
    if (await uploadBlob(client, dir, d)) {
      uploaded++;
      bytes += d.size;
    }
  }
  const mediaType = manifest.mediaType ?? md.mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  const res = await client.request(client.path('manifests', ref.tag), { method: 'PUT', headers: { 'Content-Type': mediaType }, body: manifestBytes }, `manifest ${ref.tag}`);
  const text = (await readBody(res, 1 << 16, `docker://${ref.display}`)).toString('utf8');
  if (res.status !== 201) throw new GridforgeError(`registry ${ref.registry} refused the manifest for ${ref.tag} (HTTP ${res.status}${text ? `: ${text.trim().slice(0, 300)}` : ''})`, { where: `docker://${ref.display}`, hint: 'Check the registry log.' });
  const claimed = res.headers['docker-content-digest'];
  if (typeof claimed === 'string' && claimed !== md.digest) throw new GridforgeError(`registry ${ref.registry} stored the manifest as ${claimed}, expected ${md.digest}`, { where: `docker://${ref.display}`, hint: 'The registry rewrote the manifest; check its configuration.' });
  return { ref: `docker://${ref.display}`, digest: md.digest, uploaded, bytes };
}
