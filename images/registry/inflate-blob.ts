/**
 * A gzip layer blob from a registry, inflated while it downloads into a plain layer file (its name
 * is the layer's DiffID from the image config): the transfer, the decompressor (igzip/pigz on the
 * other core) and the disk write overlap, and images/archive then scans the plain layer in place
 * as it does an archive's, instead of inflating it in a second pass after the download. The
 * compressed bytes are hashed and counted against the descriptor as in blob.ts; the plain output
 * is bounded by the per-layer size limit (a decompression bomb stops there) and by free disk; the
 * DiffID itself is checked by the layer scan. Any failure removes the file; a broken transfer is
 * started again from scratch, with backoff, up to the retries.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { once } from 'node:events';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { openExclusive } from '../../base/safe-fs.ts';
import { gzipInflater } from '../archive/compression.ts';
import { SPACE_CHECK_EVERY, SPACE_MARGIN } from '../archive/layer-scan.ts';
import { formatBytes, LAYER_SIZE_ENV } from '../archive/limits.ts';
import type { RegistryClient } from './client.ts';
import type { Descriptor } from './manifest.ts';
import { backoff, discard, NetworkError, sleep } from './transport.ts';

export interface InflateLimits {
  /** Largest plain layer (bytes). */
  maxBytes: number;
  /** Directory whose filesystem must keep SPACE_MARGIN free. */
  spaceDir: string;
}

async function inflateOnce(client: RegistryClient, d: Descriptor, file: string, where: string, limits: InflateLimits): Promise<number> {
  const res = await client.request(client.path('blobs', d.digest), { method: 'GET' }, `blob ${d.digest}`);
  if (res.status !== 200) {
    discard(res);
    if (res.status === 404) throw new GridforgeError(`registry ${client.ref.registry} has no blob ${d.digest} in ${client.ref.repository}`, { where, hint: 'The manifest names a blob the registry lost; push the image again.' });
    throw new GridforgeError(`registry ${client.ref.registry} answered HTTP ${res.status} for blob ${d.digest}`, { where, hint: 'Check the registry.' });
  }
  const fd = openExclusive(file, 0o600);
  const inflater = gzipInflater();
  const hash = crypto.createHash('sha256');
  let plain = 0;
  let finished = false;
  const writing = (async () => {
    let sinceCheck = 0;
    for await (const chunk of inflater.output as AsyncIterable<Buffer>) {
      plain += chunk.length;
      if (plain > limits.maxBytes) {
        throw new UsageError(`uncompressed layer is larger than the per-layer limit of ${formatBytes(limits.maxBytes)} (${plain} bytes so far)`, {
          where,
          hint: `A small blob that expands this much is a decompression bomb; if the layer is genuine, raise the limit with --max-layer-size <size> (environment ${LAYER_SIZE_ENV}, e.g. 200G).`,
        });
      }
      let w = 0;
      while (w < chunk.length) w += fs.writeSync(fd, chunk, w, chunk.length - w);
      sinceCheck += chunk.length;
      if (sinceCheck > SPACE_CHECK_EVERY) {
        sinceCheck = 0;
        const st = fs.statfsSync(limits.spaceDir);
        if (st.bavail * st.bsize < SPACE_MARGIN) throw new UsageError(`the inflated layer (${plain} bytes so far) would exhaust free disk in ${limits.spaceDir}`, { where, hint: 'Free disk space or pass --tmp-dir on a larger filesystem; a layer this large may be a decompression bomb.' });
      }
    }
  })();
  let writeError: unknown;
  writing.catch((e) => { writeError = e; }); // awaited below
  inflater.done.catch(() => undefined);
  try {
    let n = 0;
    try {
      for await (const chunk of res.body) {
        const c = chunk as Buffer;
        n += c.length;
        if (n > d.size) {
          res.body.destroy();
          throw new GridforgeError(`blob ${d.digest} from ${client.ref.registry} is larger than the ${d.size} bytes its descriptor says`, { where, hint: 'The registry storage is tampered or broken; nothing was written.' });
        }
        hash.update(c);
        if (!inflater.input.write(c)) await Promise.race([once(inflater.input as unknown as NodeJS.EventEmitter, 'drain'), writing]);
      }
    } catch (e) {
      if (e instanceof GridforgeError || e === writeError) throw e;
      throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (n !== d.size || got !== d.digest) {
      throw new GridforgeError(`blob ${d.digest} from ${client.ref.registry} ${n !== d.size ? `is ${n} bytes, its descriptor says ${d.size}` : `hashes to ${got}`}`, { where, hint: 'The registry storage is tampered or broken (or a proxy altered the transfer); nothing was written.' });
    }
    inflater.input.end();
    await writing;
    try {
      await inflater.done;
    } catch (e) {
      throw new UsageError(`layer ${d.digest} is not a valid gzip stream (${(e as Error).message})`, { where, hint: 'The image was pushed broken; push it again.' });
    }
    finished = true;
    return plain;
  } finally {
    if (!finished) inflater.stop();
    fs.closeSync(fd);
  }
}

/** Download gzip blob `d` inflated into `file` (which must not exist); returns the plain size. On any failure `file` is removed. */
export async function downloadInflated(client: RegistryClient, d: Descriptor, file: string, where: string, limits: InflateLimits): Promise<number> {
  for (let n = 1; ; n++) {
    try {
      return await inflateOnce(client, d, file, where, limits);
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
