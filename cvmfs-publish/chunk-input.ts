/**
 * Content handed to `putFile` as a stream, made ready for the compression pool (which chunks files
 * above the minimum chunk size on its workers): gathered in memory up to `spillAt` bytes, beyond
 * that written to a temp file in `data/txn/` that the pool reads like any source file.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';

export type GatheredContent = { buffer: Buffer } | { file: string; size: number };

/** Read `input` to its end; refused (Error) above `maxSize` bytes. The temp file is the caller's to remove. */
export async function gatherContent(input: Readable, maxSize: number, spillAt: number, tmpFile: string): Promise<GatheredContent> {
  const parts: Buffer[] = [];
  let size = 0;
  let fd: number | undefined;
  try {
    for await (const c of input) {
      const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
      size += chunk.length;
      if (size > maxSize) throw new Error(`content is above the size limit of ${maxSize} bytes`);
      if (fd === undefined && size <= spillAt) {
        parts.push(chunk);
        continue;
      }
      if (fd === undefined) {
        fd = fs.openSync(tmpFile, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
        for (const p of parts) fs.writeSync(fd, p);
        parts.length = 0;
      }
      fs.writeSync(fd, chunk);
    }
  } catch (err) {
    if (fd !== undefined) {
      fs.closeSync(fd);
      fs.rmSync(tmpFile, { force: true });
    }
    throw err;
  }
  if (fd === undefined) return { buffer: Buffer.concat(parts, size) };
  fs.closeSync(fd);
  return { file: tmpFile, size };
}
