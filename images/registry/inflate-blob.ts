/**
 * A gzip layer blob from a registry, inflated while it downloads into a plain layer file (its name
 * is the layer's DiffID from the image config): the transfer, the decompressor and the disk write
 * overlap, and images/archive then takes the scan made here instead of reading the layer again.
 * The decompressor (igzip/pigz, on the other core) writes the plain file itself; this process
 * follows the file as it grows (one reused buffer, read from the page cache) to hash the layer
 * (its DiffID) and read its tar headers, so the 500 MB of a job image never cross a pipe into
 * this process. The compressed bytes are hashed and counted against the descriptor as in blob.ts;
 * the plain file is bounded by the per-layer size limit (a decompression bomb stops there, the
 * file's size checked as it grows) and by free disk; the DiffID itself is checked by the layer
 * scan. Any failure removes the file; a broken transfer is started again from scratch, with
 * backoff, up to the retries.
 */
import fs from 'node:fs';
import { once } from 'node:events';
import { GridforgeError, UsageError } from '../../base/errors.ts';
import { openExclusive } from '../../base/safe-fs.ts';
import { gzipInflater } from '../archive/compression.ts';
import { LayerStreamScan, SPACE_CHECK_EVERY, SPACE_MARGIN, type Prescan } from '../archive/layer-scan.ts';
import { layerTooLarge } from '../archive/limits.ts';
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

const CHUNK = 1 << 17;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yieldToIo = () => new Promise<void>((r) => setImmediate(r));

/**
 * Read `file` behind the decompressor writing it (`fd`, the same file) until the writer has ended
 * and the end is reached, or the download is abandoned; every byte goes through `scan`. The file's size is
 * checked against the limits at every step, so a bomb stops within a step of the limit even if
 * the reader lags.
 */
async function followInflated(file: string, fd: number, scan: LayerStreamScan, where: string, limits: InflateLimits, writer: { ended: boolean; abandoned: boolean }): Promise<void> {
  const rfd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    let nextSpaceCheck = SPACE_CHECK_EVERY;
    while (!writer.abandoned) {
      const last = writer.ended; // sampled before the read: once the writer is done, a short read is the end
      const size = fs.fstatSync(fd).size;
      if (size > limits.maxBytes) throw layerTooLarge(limits.maxBytes, size, where);
      if (size >= nextSpaceCheck) {
        nextSpaceCheck = size + SPACE_CHECK_EVERY;
        const st = fs.statfsSync(limits.spaceDir);
        if (st.bavail * st.bsize < SPACE_MARGIN) throw new UsageError(`the inflated layer (${size} bytes so far) would exhaust free disk in ${limits.spaceDir}`, { where, hint: 'Free disk space or pass --tmp-dir on a larger filesystem; a layer this large may be a decompression bomb.' });
      }
      const n = fs.readSync(rfd, buf, 0, CHUNK, pos);
      if (n > 0) {
        scan.push(buf.subarray(0, n));
        pos += n;
      }
      if (n === CHUNK) await yieldToIo(); // more is there: let the download go on, then read again
      else if (last && n === 0) return;
      else if (!last) await sleep(1); // caught up with the decompressor
    }
  } finally {
    fs.closeSync(rfd);
  }
}

async function inflateOnce(client: RegistryClient, d: Descriptor, file: string, where: string, limits: InflateLimits): Promise<Prescan> {
  const res = await requestBlob(client, d, where);
  const fd = openExclusive(file, 0o600);
  const inflater = gzipInflater(fd);
  const writer = { ended: false, abandoned: false };
  let inflateError: unknown;
  inflater.done.then(() => { writer.ended = true; }, (e) => { inflateError = e; writer.ended = true; });
  const check = new BlobCheck(client, d, where);
  // the plain layer is hashed (its DiffID) and its tar headers read as it is written: the layer
  // scan then takes this result instead of reading the layer again (as for docker save, engine.ts)
  // (the follower checks the file's size against the limit before every read of at most CHUNK)
  const scan = new LayerStreamScan(file, 0, { label: where, maxBytes: limits.maxBytes + CHUNK });
  let finished = false;
  const following = followInflated(file, fd, scan, where, limits, writer);
  let followError: unknown;
  following.catch((e) => { followError = e; }); // awaited below
  try {
    try {
      for await (const chunk of res.body) {
        const c = chunk as Buffer;
        check.add(c, res.body);
        if (!inflater.input.write(c)) await Promise.race([once(inflater.input as unknown as NodeJS.EventEmitter, 'drain'), following]);
        if (followError) throw followError;
      }
    } catch (e) {
      if (e instanceof GridforgeError || e === followError) throw e;
      throw new NetworkError((e as Error).message, (e as NodeJS.ErrnoException).code);
    }
    check.finish();
    inflater.input.end();
    await following;
    if (inflateError) throw new UsageError(`layer ${d.digest} is not a valid gzip stream (${(inflateError as Error).message})`, { where, hint: 'The image was pushed broken; push it again.' });
    finished = true;
    const { digest, complete } = scan.finish();
    return { digest, complete, error: scan.error, entries: scan.entries, total: scan.total };
  } finally {
    if (!finished) {
      inflater.stop();
      writer.abandoned = true;
      await following.catch(() => undefined); // it reads through `fd`: closed only after it stopped
    }
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
