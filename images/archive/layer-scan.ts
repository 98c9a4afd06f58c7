/**
 * Scan one layer blob: detect compression by magic bytes, decompress (child process), hash the
 * whole uncompressed stream including the padding after end-of-archive, parse headers, and record
 * where each entry's data lives. Uncompressed layers are read in place; decompressed ones are
 * spooled once so the output pass can read surviving file contents by offset.
 * A DiffID mismatch is a UsageError naming the layer.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../scripts/lib/errors.ts';
import { decompressRange, detectFileRange, type Compression } from './compression.ts';
import type { LayerBlob } from './image-source.ts';
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

/**
 * Hash + header scan of one uncompressed layer stream, fed chunk by chunk. Used for layers read
 * from files and for layers scanned on the fly while `docker save` streams by (engine.ts).
 */
export class LayerStreamScan {
  readonly entries: LayerEntry[] = [];
  private readonly hash = crypto.createHash('sha256');
  private readonly scanner: TarScanner;
  total = 0;
  error?: Error;
  constructor(dataFile: string, base: number) {
    this.scanner = new TarScanner((e) => this.entries.push({ header: e.header, file: dataFile, offset: base + e.offset }));
  }
  push(chunk: Buffer): void {
    this.hash.update(chunk);
    this.total += chunk.length;
    if (this.error || this.scanner.ended) return;
    try {
      this.scanner.push(chunk);
    } catch (e) {
      this.error = e as Error;
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

function verify(blob: LayerBlob, digest: string, complete: boolean, error: Error | undefined): void {
  if (digest !== blob.diffId) {
    throw new UsageError(`DiffID mismatch: uncompressed layer hashes to ${digest}, the config says ${blob.diffId}`, { where: blob.label, hint: 'The layer was altered or truncated; re-export the image from a trusted source.' });
  }
  if (error) throw new UsageError(`cannot read: ${error.message}`, { where: blob.label, hint: 'The layer is corrupted or not a tar archive; re-export the image.' });
  if (!complete) throw new UsageError('truncated tar stream', { where: blob.label, hint: 'Re-export the image.' });
}

const CHUNK = 1 << 20;
const SPACE_CHECK_EVERY = 256 << 20;
const SPACE_MARGIN = 512 << 20;

export async function scanLayer(blob: LayerBlob & { prescan?: Prescan }, spoolDir: string, index: number): Promise<ScannedLayer> {
  if (blob.prescan) {
    const p = blob.prescan;
    verify(blob, p.digest, p.complete, p.error);
    return { blob, compression: 'none', entries: p.entries, uncompressedSize: p.total };
  }
  const compression = blob.size === 0 ? 'none' : detectFileRange(blob.file, blob.offset, blob.size);
  if (compression === 'none') {
    // plain tar: read in place with one reused buffer (no copies, no garbage)
    const scan = new LayerStreamScan(blob.file, blob.offset);
    const fd = fs.openSync(blob.file, 'r');
    const buf = Buffer.allocUnsafe(CHUNK);
    try {
      for (let off = 0; off < blob.size; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, blob.size - off), blob.offset + off);
        if (n === 0) break;
        scan.push(buf.subarray(0, n));
        off += n;
        if ((off & (64 * CHUNK - 1)) === 0) await new Promise((r) => setImmediate(r)); // let the other scan breathe
      }
    } finally {
      fs.closeSync(fd);
    }
    const { digest, complete } = scan.finish();
    verify(blob, digest, complete, scan.error);
    return { blob, compression, entries: scan.entries, uncompressedSize: scan.total };
  }
  const dataFile = path.join(spoolDir, `layer-${index}.tar`);
  const scan = new LayerStreamScan(dataFile, 0);
  const out = fs.openSync(dataFile, 'w');
  const { stream, done } = decompressRange(blob.file, blob.offset, blob.size, compression);
  done.catch(() => { /* awaited below; an early exit from the loop must not leave it unhandled */ });
  try {
    let sinceCheck = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      scan.push(chunk);
      let w = 0;
      while (w < chunk.length) w += fs.writeSync(out, chunk, w, chunk.length - w);
      sinceCheck += chunk.length;
      if (sinceCheck > SPACE_CHECK_EVERY) {
        // bound decompressed output by free disk, not by a compression ratio
        sinceCheck = 0;
        const st = fs.statfsSync(spoolDir);
        if (st.bavail * st.bsize < SPACE_MARGIN) throw new UsageError(`decompressed layer (${scan.total} bytes so far) would exhaust free disk in ${spoolDir}`, { where: blob.label, hint: 'Free disk space or pass --tmp-dir on a larger filesystem; a layer this large may be a decompression bomb.' });
      }
    }
    await done;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read: ${(e as Error).message}`, { where: blob.label, hint: 'The layer is corrupted or not a tar archive; re-export the image.' });
  } finally {
    fs.closeSync(out);
  }
  const { digest, complete } = scan.finish();
  verify(blob, digest, complete, scan.error);
  return { blob, compression, entries: scan.entries, uncompressedSize: scan.total };
}

/** Scan every layer, two at a time (decompression of the next runs while this one is parsed). */
export async function scanLayers(blobs: LayerBlob[], spoolDir: string, onLayer?: (i: number, l: ScannedLayer) => void): Promise<ScannedLayer[]> {
  const results: ScannedLayer[] = new Array(blobs.length);
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const i = next++;
      results[i] = await scanLayer(blobs[i], spoolDir, i);
      onLayer?.(i, results[i]);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}
