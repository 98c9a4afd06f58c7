/**
 * Blobs from a registry, streamed into a file created exclusively (base/safe-fs.ts), hashed and
 * counted on the way: more bytes than the descriptor's size stop the transfer at once, and a
 * digest or size mismatch removes the file and fails naming the blob. A transfer that breaks off
 * (network error, idle timeout) is started again from scratch, with backoff, up to the retries.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { GridforgeError } from '../../base/errors.ts';
import { openExclusive } from '../../base/safe-fs.ts';
import type { RegistryClient } from './client.ts';
import type { Descriptor } from './manifest.ts';
import { backoff, discard, NetworkError, sleep } from './transport.ts';

class Mismatch extends GridforgeError {}

async function downloadOnce(client: RegistryClient, d: Descriptor, file: string, where: string): Promise<void> {
  const res = await client.request(client.path('blobs', d.digest), { method: 'GET' }, `blob ${d.digest}`);
  if (res.status === 404) {
    discard(res);
    throw new GridforgeError(`registry ${client.ref.registry} has no blob ${d.digest} in ${client.ref.repository}`, { where, hint: 'The manifest names a blob the registry lost; push the image again.' });
  }
  if (res.status !== 200) {
    discard(res);
    throw new GridforgeError(`registry ${client.ref.registry} answered HTTP ${res.status} for blob ${d.digest}`, { where, hint: 'Check the registry.' });
  }
  const fd = openExclusive(file, 0o600);
  const hash = crypto.createHash('sha256');
  let n = 0;
  try {
    for await (const chunk of res.body) {
      const c = chunk as Buffer;
      n += c.length;
      if (n > d.size) {
        res.body.destroy();
        throw new Mismatch(`blob ${d.digest} from ${client.ref.registry} is larger than the ${d.size} bytes its descriptor says`, { where, hint: 'The registry storage is tampered or broken; nothing was written.' });
      }
      hash.update(c);
      let w = 0;
      while (w < c.length) w += fs.writeSync(fd, c, w, c.length - w);
    }
  } catch (e) {
    if (e instanceof GridforgeError) throw e;
    throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
  } finally {
    fs.closeSync(fd);
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (n !== d.size || got !== d.digest) {
    throw new Mismatch(`blob ${d.digest} from ${client.ref.registry} ${n !== d.size ? `is ${n} bytes, its descriptor says ${d.size}` : `hashes to ${got}`}`, { where, hint: 'The registry storage is tampered or broken (or a proxy altered the transfer); nothing was written.' });
  }
}

/** Download `d` into `file` (which must not exist); on any failure `file` is removed. */
export async function downloadBlob(client: RegistryClient, d: Descriptor, file: string, where: string): Promise<void> {
  for (let n = 1; ; n++) {
    try {
      await downloadOnce(client, d, file, where);
      return;
    } catch (e) {
      fs.rmSync(file, { force: true });
      if (!(e instanceof NetworkError) || n >= client.t.attempts) {
        if (e instanceof NetworkError) throw new GridforgeError(`registry ${client.ref.registry} failed: blob ${d.digest}: ${e.message} (after ${n} attempts)`, { where, hint: 'Check the registry and the network.' });
        throw e;
      }
      await sleep(backoff(client.t, n));
    }
  }
}
