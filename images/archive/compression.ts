/**
 * Layer compression, detected by magic bytes (never by media type): gzip `1f 8b 08`,
 * zstd `28 b5 2f fd`, otherwise plain tar. Decompression runs in a child process (pigz/zstd),
 * i.e. on the other core, while the parent hashes and parses the uncompressed stream.
 */
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';

export type Compression = 'gzip' | 'zstd' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export function detectFileRange(file: string, offset: number, size: number): Compression {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(4, size));
    fs.readSync(fd, head, 0, head.length, offset);
    return detectCompression(head);
  } finally {
    fs.closeSync(fd);
  }
}

let pigzAvailable: boolean | undefined;
function hasPigz(): boolean {
  if (pigzAvailable === undefined) pigzAvailable = ['/usr/bin/pigz', '/bin/pigz', '/usr/local/bin/pigz'].some((p) => fs.existsSync(p));
  return pigzAvailable;
}

export interface Decompressed {
  stream: Readable;
  /** Resolves when the decompressor exited cleanly; rejects with its stderr otherwise. */
  done: Promise<void>;
}

/** Decompress a byte range of a file. */
export function decompressRange(file: string, offset: number, size: number, compression: Compression): Decompressed {
  const input = fs.createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 });
  if (compression === 'none') {
    return { stream: input, done: new Promise((res, rej) => { input.on('end', res); input.on('error', rej); }) };
  }
  if (compression === 'gzip' && !hasPigz()) {
    const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 });
    input.pipe(gunzip);
    return { stream: gunzip, done: new Promise((res, rej) => { gunzip.on('end', res); gunzip.on('error', rej); input.on('error', rej); }) };
  }
  const cmd = compression === 'gzip' ? 'pigz' : 'zstd';
  const child: ChildProcess = spawn(cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  input.pipe(child.stdin!);
  child.stdin!.on('error', () => { /* reported through the exit code */ });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<void>((res, rej) => {
    child.on('error', rej);
    input.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} -dc failed (${code}): ${stderr.trim()}`))));
  });
  return { stream: child.stdout!, done };
}
