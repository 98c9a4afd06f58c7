/**
 * Scan one layer blob: detect compression by magic bytes, decompress (child process), hash the
 * whole uncompressed stream including the padding after end-of-archive, parse headers, and record
 * where each entry's data lives. Uncompressed layers are read in place; decompressed ones are
 * spooled once (up to the end-of-archive marker, never the padding after it) so the output pass
 * can read surviving file contents by offset.
 *
 * Bounded (limits.ts): the uncompressed size per layer, the entries over all layers (counted as
 * they are parsed) and what may follow the end-of-archive marker; spooling also stops before the
 * disk fills. A blob named by its digest is hashed as it is read (the compressed bytes, in the
 * same pass) and must match it. (The spool directory is the caller's: images/layer/image-tree.ts
 * creates it and removes it on close and on SIGINT/SIGTERM.)
 * A DiffID or digest mismatch, a limit, a malformed stream: a UsageError naming the layer.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { decompressRange, detectCompression, type Compression, type Decompressed } from './compression.ts';
import type { LayerBlob } from './image-source.ts';
import { formatBytes, layerTooLarge, ENTRIES_ENV, MAX_TRAILING_BYTES, resolveScanLimits, type ScanLimits } from './limits.ts';
import { TarScanner } from './tar-scan.ts';
import type { TarHeader } from './tar-format.ts';

export interface LayerEntry {
  header: TarHeader;
  /** File holding the entry's data (the archive itself or a spool file) and the offset in it. */
  file: string;
  offset: number;
}

export interface ScannedLayer {
  blob: LayerBlob;
  compression: Compression;
  entries: LayerEntry[];
  uncompressedSize: number;
}

/** Entries counted over all layers of one image. */
export interface EntryBudget {
  count: number;
  max: number;
}

export interface StreamScanOptions {
  /** Names the layer in errors. */
  label?: string;
  /** Largest uncompressed stream; default: resolveScanLimits(). */
  maxBytes?: number;
  /** Shared entry counter; default: one of its own with the default limit. */
  budget?: EntryBudget;
}

function entryLimitError(max: number, where: string): UsageError {
  return new UsageError(`more than ${max} entries`, { where, hint: `The image exceeds the entry limit (${ENTRIES_ENV}); it may be a decompression bomb.` });
}

/**
 * Hash + header scan of one uncompressed layer stream, fed chunk by chunk. Used for layers read
 * from files and for layers scanned on the fly while `docker save` streams by (engine.ts).
 * A limit (size, entries, padding after the end) throws at once; a format error is kept in
 * `error` and the rest is only hashed, so a DiffID mismatch is still reported first.
 */
export class LayerStreamScan {
  readonly entries: LayerEntry[] = [];
  private readonly hash = crypto.createHash('sha256');
  private readonly scanner: TarScanner;
  private readonly label: string;
  private readonly maxBytes: number;
  private trailing = 0;
  total = 0;
  error?: Error;
  constructor(dataFile: string, base: number, opts: StreamScanOptions = {}) {
    this.label = opts.label ?? 'layer';
    const defaults = opts.maxBytes === undefined || opts.budget === undefined ? resolveScanLimits() : undefined;
    this.maxBytes = opts.maxBytes ?? defaults!.maxLayerSize;
    const budget = opts.budget ?? { count: 0, max: defaults!.maxEntries };
    this.scanner = new TarScanner((e) => {
      if (++budget.count > budget.max) throw entryLimitError(budget.max, `${this.label}: ${e.header.path}`);
      this.entries.push({ header: e.header, file: dataFile, offset: base + e.offset });
    });
  }

  /** Hash and parse the next chunk; returns how many of its bytes belong to the archive proper (what to spool). */
  push(chunk: Buffer): number {
    const start = this.total;
    this.hash.update(chunk);
    this.total += chunk.length;
    if (this.total > this.maxBytes) throw layerTooLarge(this.maxBytes, this.total, this.label);
    if (this.error) return 0;
    if (!this.scanner.ended) {
      try {
        this.scanner.push(chunk);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        this.error = e as Error;
        return 0;
      }
      if (!this.scanner.ended) return chunk.length;
    }
    const keep = Math.max(0, Math.min(chunk.length, this.scanner.endPos - start));
    this.checkTrailing(chunk.subarray(keep));
    return keep;
  }

  /** Docker drains and ignores what follows the end-of-archive marker; here it must be a bounded zero padding. */
  private checkTrailing(rest: Buffer): void {
    if (rest.length === 0) return;
    this.trailing += rest.length;
    if (this.trailing > MAX_TRAILING_BYTES) {
      throw new UsageError(`more than ${formatBytes(MAX_TRAILING_BYTES)} of data after the tar end-of-archive marker`, { where: this.label, hint: 'Tar writers pad with at most a few KiB of zeros; this layer hides data after its end (or is a decompression bomb). Re-export the image from a trusted source.' });
    }
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] !== 0) {
        throw new UsageError(`non-zero data after the tar end-of-archive marker (byte ${this.total - rest.length + i} of the uncompressed layer)`, { where: this.label, hint: 'Nothing reads data hidden after the end of a layer; re-export the image from a trusted source.' });
      }
    }
  }

  finish(): { digest: string; complete: boolean } {
    return { digest: `sha256:${this.hash.digest('hex')}`, complete: !this.error && this.scanner.complete };
  }
}

/** A layer already scanned while streaming (engine saves): verified here like any other. */
export interface Prescan {
  digest: string;
  complete: boolean;
  error?: Error;
  entries: LayerEntry[];
  total: number;
}

function verify(blob: LayerBlob, digest: string, complete: boolean, error: Error | undefined, blobDigest?: string): void {
  if (blob.digest && blobDigest && blobDigest !== blob.digest) {
    throw new UsageError(`blob content hashes to ${blobDigest}, not to its digest ${blob.digest}`, { where: blob.label, hint: 'The blob was altered or swapped; re-export the image from a trusted source.' });
  }
  if (digest !== blob.diffId) {
    throw new UsageError(`DiffID mismatch: uncompressed layer hashes to ${digest}, the config says ${blob.diffId}`, { where: blob.label, hint: 'The layer was altered or truncated; re-export the image from a trusted source.' });
  }
  if (error) throw new UsageError(`cannot read: ${error.message}`, { where: blob.label, hint: 'The layer is corrupted or not a tar archive; re-export the image.' });
  if (!complete) throw new UsageError('truncated tar stream', { where: blob.label, hint: 'Re-export the image.' });
}

/** Open the blob's file; it must be a regular file (the one the reader found, when known) holding the whole range. */
function openBlob(blob: LayerBlob): number {
  const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(blob.file, O_RDONLY | O_NONBLOCK | (blob.expect ? O_NOFOLLOW : 0));
  } catch (e) {
    throw new UsageError(`cannot open ${blob.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { where: blob.label, hint: 'Make sure nobody changes the image input while gridforge reads it.' });
  }
  const st = fs.fstatSync(fd);
  const fail = (msg: string): never => {
    fs.closeSync(fd);
    throw new UsageError(msg, { where: blob.label, hint: 'Make sure nobody changes the image input while gridforge reads it, then run the command again.' });
  };
  if (!st.isFile()) fail(`${blob.file} is not a regular file`);
  const x = blob.expect;
  if (x && (st.dev !== x.dev || st.ino !== x.ino || st.size !== x.size)) fail(`${blob.file} was replaced since the image was opened`);
  if (st.size < blob.offset + blob.size) fail(`${blob.file} is shorter than the layer (${st.size} < ${blob.offset + blob.size} bytes)`);
  return fd;
}

function detectFd(fd: number, offset: number, size: number): Compression {
  const head = Buffer.alloc(Math.min(4, size));
  fs.readSync(fd, head, 0, head.length, offset);
  return detectCompression(head);
}

interface ScanContext {
  limits: ScanLimits;
  budget: EntryBudget;
  /** True once another layer failed: stop early. */
  aborted: () => boolean;
}

const CHUNK = 1 << 20;
export const SPACE_CHECK_EVERY = 64 << 20;
export const SPACE_MARGIN = 512 << 20;

class Aborted extends Error {}

async function scanPlain(blob: LayerBlob, fd: number, ctx: ScanContext, scan: LayerStreamScan): Promise<void> {
  // plain tar: read in place with one reused buffer (no copies, no garbage)
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let off = 0; off < blob.size; ) {
    const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, blob.size - off), blob.offset + off);
    if (n === 0) break;
    scan.push(buf.subarray(0, n));
    off += n;
    if ((off & (64 * CHUNK - 1)) === 0) {
      await new Promise((r) => setImmediate(r)); // let the other scan breathe
      if (ctx.aborted()) throw new Aborted();
    }
  }
}

/** Decompress into the spool file; returns the digest of the compressed bytes (hashed as they are read). */
async function scanCompressed(blob: LayerBlob, fd: number, compression: Compression, dataFile: string, spoolDir: string, ctx: ScanContext, scan: LayerStreamScan): Promise<string> {
  const blobHash = crypto.createHash('sha256');
  const out = fs.openSync(dataFile, 'wx', 0o600);
  let dec: Decompressed | undefined;
  let finished = false;
  try {
    dec = decompressRange(fd, blob.offset, blob.size, compression, (c) => blobHash.update(c));
    dec.done.catch(() => { /* awaited below; an early exit from the loop must not leave it unhandled */ });
    let sinceCheck = 0;
    for await (const chunk of dec.stream as AsyncIterable<Buffer>) {
      const keep = scan.push(chunk);
      let w = 0;
      while (w < keep) w += fs.writeSync(out, chunk, w, keep - w);
      sinceCheck += keep;
      if (sinceCheck > SPACE_CHECK_EVERY) {
        // bound decompressed output by free disk, not by a compression ratio
        sinceCheck = 0;
        if (ctx.aborted()) throw new Aborted();
        const st = fs.statfsSync(spoolDir);
        if (st.bavail * st.bsize < SPACE_MARGIN) throw new UsageError(`decompressed layer (${scan.total} bytes so far) would exhaust free disk in ${spoolDir}`, { where: blob.label, hint: 'Free disk space or pass --tmp-dir on a larger filesystem; a layer this large may be a decompression bomb.' });
      }
    }
    await dec.done;
    finished = true;
  } catch (e) {
    if (e instanceof UsageError || e instanceof Aborted) throw e;
    throw new UsageError(`cannot read: ${(e as Error).message}`, { where: blob.label, hint: 'The layer is corrupted or not a tar archive; re-export the image.' });
  } finally {
    if (!finished) await dec?.stop();
    fs.closeSync(out);
  }
  return `sha256:${blobHash.digest('hex')}`;
}

async function scanLayer(blob: LayerBlob, spoolDir: string, index: number, ctx: ScanContext): Promise<ScannedLayer> {
  if (blob.prescan) {
    const p = blob.prescan;
    ctx.budget.count += p.entries.length;
    if (ctx.budget.count > ctx.budget.max) throw entryLimitError(ctx.budget.max, blob.label);
    verify(blob, p.digest, p.complete, p.error, p.digest);
    return { blob, compression: 'none', entries: p.entries, uncompressedSize: p.total };
  }
  const fd = openBlob(blob);
  try {
    const compression = blob.size === 0 ? 'none' : detectFd(fd, blob.offset, blob.size);
    const dataFile = compression === 'none' ? blob.file : path.join(spoolDir, `layer-${index}.tar`);
    const scan = new LayerStreamScan(dataFile, compression === 'none' ? blob.offset : 0, { label: blob.label, maxBytes: ctx.limits.maxLayerSize, budget: ctx.budget });
    let blobDigest: string | undefined;
    if (compression === 'none') {
      await scanPlain(blob, fd, ctx, scan);
    } else {
      try {
        blobDigest = await scanCompressed(blob, fd, compression, dataFile, spoolDir, ctx, scan);
      } catch (e) {
        fs.rmSync(dataFile, { force: true }); // give the disk back now, not when the image is closed
        throw e;
      }
    }
    const { digest, complete } = scan.finish();
    verify(blob, digest, complete, scan.error, blobDigest ?? digest);
    return { blob, compression, entries: scan.entries, uncompressedSize: scan.total };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Scan every layer, two at a time (decompression of the next runs while this one is parsed).
 * `limits`: per-layer size and total entries (default: limits.ts resolveScanLimits, i.e. the
 * environment, then 64 GiB and 5,000,000). The first failure stops the other layer too.
 */
export async function scanLayers(blobs: LayerBlob[], spoolDir: string, onLayer?: (i: number, l: ScannedLayer) => void, limits: Partial<ScanLimits> = {}): Promise<ScannedLayer[]> {
  const resolved = resolveScanLimits(limits);
  const results: ScannedLayer[] = new Array(blobs.length);
  let next = 0;
  let failed = false;
  const ctx: ScanContext = { limits: resolved, budget: { count: 0, max: resolved.maxEntries }, aborted: () => failed };
  const worker = async () => {
    while (!failed && next < blobs.length) {
      const i = next++;
      try {
        results[i] = await scanLayer(blobs[i], spoolDir, i, ctx);
      } catch (e) {
        failed = true;
        throw e;
      }
      onLayer?.(i, results[i]);
    }
  };
  const settled = await Promise.allSettled([worker(), worker()]);
  const bad = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !(s.reason instanceof Aborted)) ?? settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (bad) throw bad.reason;
  return results;
}
