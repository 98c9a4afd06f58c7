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
import fs from 'node:fs';
import { once } from 'node:events';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { openExclusive } from '../../base/safe-fs.ts';
import { gzipInflater } from '../archive/compression.ts';
import { LayerStreamScan, SPACE_CHECK_EVERY, SPACE_MARGIN, type Prescan } from '../archive/layer-scan.ts';
import { formatBytes, LAYER_SIZE_ENV } from '../archive/limits.ts';
import type { RegistryClient } from './client.ts';
import type { Descriptor } from './manifest.ts';
import { BlobCheck, requestBlob, withBlobRetries } from './blob.ts';
import { NetworkError } from './transport.ts';

export interface InflateLimits {
  /** Largest plain layer (bytes). */
  maxBytes: number;
  /** Directory whose filesystem must keep SPACE_MARGIN free. */
  spaceDir: string;
}

async function inflateOnce(client: RegistryClient, d: Descriptor, file: string, where: string, limits: InflateLimits): Promise<Prescan> {
  const res = await requestBlob(client, d, where);
  const fd = openExclusive(file, 0o600);
  const inflater = gzipInflater();
  const check = new BlobCheck(client, d, where);
  // the plain layer is hashed (its DiffID) and its tar headers read as it is written: the layer
  // scan then takes this result instead of reading the layer again (as for docker save, engine.ts)
  const scan = new LayerStreamScan(file, 0, { label: where, maxBytes: limits.maxBytes });
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
      scan.push(chunk);
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
    try {
      for await (const chunk of res.body) {
        const c = chunk as Buffer;
        check.add(c, res.body);
        if (!inflater.input.write(c)) await Promise.race([once(inflater.input as unknown as NodeJS.EventEmitter, 'drain'), writing]);
      }
    } catch (e) {
      if (e instanceof GridforgeError || e === writeError) throw e;
      throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
    }
    check.finish();
    inflater.input.end();
    await writing;
    try {
      await inflater.done;
    } catch (e) {
      throw new UsageError(`layer ${d.digest} is not a valid gzip stream (${(e as Error).message})`, { where, hint: 'The image was pushed broken; push it again.' });
    }
    finished = true;
    const { digest, complete } = scan.finish();
    return { digest, complete, error: scan.error, entries: scan.entries, total: scan.total };
  } finally {
    if (!finished) inflater.stop();
    fs.closeSync(fd);
  }
}

/**
 * Download gzip blob `d` inflated into `file` (which must not exist); returns the scan of the
 * plain layer (its digest, size and entries). On any failure `file` is removed.
 */
export function downloadInflated(client: RegistryClient, d: Descriptor, file: string, where: string, limits: InflateLimits): Promise<Prescan> {
  return withBlobRetries(client, d, file, where, () => inflateOnce(client, d, file, where, limits));
}
