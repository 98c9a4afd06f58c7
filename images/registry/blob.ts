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
import { backoff, discard, NetworkError, sleep, type Response } from './transport.ts';

class Mismatch extends GridforgeError {}

/** GET a blob (the response body is the caller's to read); a missing blob or an error status fails naming it. */
export async function requestBlob(client: RegistryClient, d: Descriptor, where: string): Promise<Response> {
  const res = await client.request(client.path('blobs', d.digest), { method: 'GET' }, `blob ${d.digest}`);
  if (res.status === 404) {
    discard(res);
    throw new GridforgeError(`registry ${client.ref.registry} has no blob ${d.digest} in ${client.ref.repository}`, { where, hint: 'The manifest names a blob the registry lost; push the image again.' });
  }
  if (res.status !== 200) {
    discard(res);
    throw new GridforgeError(`registry ${client.ref.registry} answered HTTP ${res.status} for blob ${d.digest}`, { where, hint: 'Check the registry.' });
  }
  return res;
}

/** Counts and hashes a blob's bytes as they arrive: more than the descriptor says stops at once; finish() checks size and digest. */
export class BlobCheck {
  private readonly hash = crypto.createHash('sha256');
  private n = 0;
  constructor(private readonly client: RegistryClient, private readonly d: Descriptor, private readonly where: string) {}

  add(c: Buffer, body: { destroy(): void }): void {
    this.n += c.length;
    if (this.n > this.d.size) {
      body.destroy();
      throw new Mismatch(`blob ${this.d.digest} from ${this.client.ref.registry} is larger than the ${this.d.size} bytes its descriptor says`, { where: this.where, hint: 'The registry storage is tampered or broken; nothing was written.' });
    }
    this.hash.update(c);
  }

  finish(): void {
    const got = `sha256:${this.hash.digest('hex')}`;
    if (this.n !== this.d.size || got !== this.d.digest) {
      throw new Mismatch(`blob ${this.d.digest} from ${this.client.ref.registry} ${this.n !== this.d.size ? `is ${this.n} bytes, its descriptor says ${this.d.size}` : `hashes to ${got}`}`, { where: this.where, hint: 'The registry storage is tampered or broken (or a proxy altered the transfer); nothing was written.' });
    }
  }
}

async function downloadOnce(client: RegistryClient, d: Descriptor, file: string, where: string): Promise<void> {
  const res = await requestBlob(client, d, where);
  const fd = openExclusive(file, 0o600);
  const check = new BlobCheck(client, d, where);
  try {
    for await (const chunk of res.body) {
      const c = chunk as Buffer;
      check.add(c, res.body);
      let w = 0;
      while (w < c.length) w += fs.writeSync(fd, c, w, c.length - w);
    }
  } catch (e) {
    if (e instanceof GridforgeError) throw e;
    throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
  } finally {
    fs.closeSync(fd);
  }
  check.finish();
}

/**
 * Run `once` (a transfer into `file`) with the registry's retries: a network error starts it
 * again from scratch after a backoff; any failure removes `file`.
 */
export async function withBlobRetries<T>(client: RegistryClient, d: Descriptor, file: string, where: string, once: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await once();
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

/** Download `d` into `file` (which must not exist); on any failure `file` is removed. */
export function downloadBlob(client: RegistryClient, d: Descriptor, file: string, where: string): Promise<void> {
  return withBlobRetries(client, d, file, where, () => downloadOnce(client, d, file, where));
}
