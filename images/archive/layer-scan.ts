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

export async function scanLayer(blob: LayerBlob, spoolDir: string, index: number): Promise<ScannedLayer> {
  const compression = blob.size === 0 ? 'none' : detectFileRange(blob.file, blob.offset, blob.size);
  const entries: LayerEntry[] = [];
  const dataFile = compression === 'none' ? blob.file : path.join(spoolDir, `layer-${index}.tar`);
  const base = compression === 'none' ? blob.offset : 0;
  const scanner = new TarScanner((e) => entries.push({ header: e.header, file: dataFile, offset: base + e.offset }));
  const hash = crypto.createHash('sha256');
  let total = 0;
  let out: fs.WriteStream | undefined;
  if (compression !== 'none') out = fs.createWriteStream(dataFile, { highWaterMark: 1 << 20 });
  const { stream, done } = decompressRange(blob.file, blob.offset, blob.size, compression);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      total += chunk.length;
      if (!scanner.ended) scanner.push(chunk);
      if (out && !out.write(chunk)) await new Promise<void>((r) => out!.once("drain", () => r()));
    }
    await done;
  } catch (e) {
    out?.destroy();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read: ${(e as Error).message}`, { where: blob.label, hint: 'The layer is corrupted or not a tar archive; re-export the image.' });
  }
  if (out) await new Promise<void>((res, rej) => out!.end((err?: Error | null) => (err ? rej(err) : res())));
  const digest = `sha256:${hash.digest('hex')}`;
  if (digest !== blob.diffId) {
    throw new UsageError(`DiffID mismatch: uncompressed layer hashes to ${digest}, the config says ${blob.diffId}`, { where: blob.label, hint: 'The layer was altered or truncated; re-export the image from a trusted source.' });
  }
  if (!scanner.complete) throw new UsageError('truncated tar stream', { where: blob.label, hint: 'Re-export the image.' });
  return { blob, compression, entries, uncompressedSize: total };
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
