/**
 * Content-addressed object store under `<repo>/data/`: zlib (default level) stream, named by the SHA-1
 * of the compressed bytes, written to a temp file first and renamed to `data/xx/<rest>` (atomic; a
 * killed writer leaves at most a temp file that `repo abort` removes). Streams go through
 * `data/txn/` (their hash is known only at the end); objects hashed in memory are written beside
 * their final name as `.<rest>.<pid>.<n>.tmp`, which never matches an object name.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { objectPath, type ObjectSuffix } from './format.ts';

export function compressBuffer(content: Buffer): { compressed: Buffer; hash: string } {
  const compressed = zlib.deflateSync(content, { level: zlib.constants.Z_DEFAULT_COMPRESSION });
  return { compressed, hash: createHash('sha1').update(compressed).digest('hex') };
}

export function sha1Hex(data: Buffer | string): string {
  return createHash('sha1').update(data).digest('hex');
}

/** A temp file of a writer beside the objects in data/xx/ (leading dot: never an object name). */
export function isTempObjectName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/**
 * Remove temp objects left beside the objects in data/00..ff (a killed or cut-off writer); with
 * `pid`, only that process's. Returns how many were removed.
 */
export function removeTempObjects(repoDir: string, pid?: number): number {
  const mine = pid === undefined ? undefined : `.${pid}.w`;
  let removed = 0;
  for (let i = 0; i < 256; i++) {
    const sub = path.join(repoDir, 'data', i.toString(16).padStart(2, '0'));
    if (!fs.existsSync(sub)) continue;
    for (const f of fs.readdirSync(sub)) {
      if (!isTempObjectName(f) || (mine && !f.includes(mine))) continue;
      fs.rmSync(path.join(sub, f), { force: true });
      removed++;
    }
  }
  return removed;
}

export class ObjectStore {
  constructor(readonly repoDir: string) {}

  /** Create data/00..ff and data/txn. */
  ensureLayout(): void {
    fs.mkdirSync(path.join(this.repoDir, 'data', 'txn'), { recursive: true });
    for (let i = 0; i < 256; i++) fs.mkdirSync(path.join(this.repoDir, 'data', i.toString(16).padStart(2, '0')), { recursive: true });
  }

  file(hash: string, suffix: ObjectSuffix = ''): string {
    return path.join(this.repoDir, objectPath(hash, suffix));
  }

  has(hash: string, suffix: ObjectSuffix = ''): boolean {
    return fs.existsSync(this.file(hash, suffix));
  }

  tempFile(): string {
    return path.join(this.repoDir, 'data', 'txn', `${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  }

  /** Store already compressed bytes under their hash (no-op when present). */
  storeCompressed(compressed: Buffer, hash: string, suffix: ObjectSuffix = ''): void {
    const dest = this.file(hash, suffix);
    if (fs.existsSync(dest)) return;
    const tmp = this.tempFile();
    fs.writeFileSync(tmp, compressed);
    fs.renameSync(tmp, dest);
  }

  /** Compress, hash and store a buffer; returns the content hash and the compressed size. */
  putBuffer(content: Buffer, suffix: ObjectSuffix = ''): { hash: string; compressedSize: number } {
    const { compressed, hash } = compressBuffer(content);
    this.storeCompressed(compressed, hash, suffix);
    return { hash, compressedSize: compressed.length };
  }

  /** Stream a Readable through deflate + SHA-1 into the store; returns hash and uncompressed size. */
  async putStream(input: Readable, suffix: ObjectSuffix = '', maxSize = Number.MAX_SAFE_INTEGER): Promise<{ hash: string; size: number }> {
    const sha = createHash('sha1');
    let size = 0;
    const tmp = this.tempFile();
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxSize) cb(new Error(`content exceeds the size limit of ${maxSize} bytes`));
        else cb(null, chunk);
      },
    });
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sha.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(input, counter, zlib.createDeflate({ level: zlib.constants.Z_DEFAULT_COMPRESSION }), hasher, fs.createWriteStream(tmp));
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const hash = sha.digest('hex');
    const dest = this.file(hash, suffix);
    if (fs.existsSync(dest)) fs.rmSync(tmp, { force: true });
    else fs.renameSync(tmp, dest);
    return { hash, size };
  }

  /** Read the compressed bytes of an object. */
  readCompressed(hash: string, suffix: ObjectSuffix = ''): Buffer {
    return fs.readFileSync(this.file(hash, suffix));
  }
}

/** Check the SHA-1 of compressed bytes and inflate them; throws a message naming the object. */
export function verifyAndInflate(compressed: Buffer, hash: string, where: string): Buffer {
  const actual = sha1Hex(compressed);
  if (actual !== hash) throw new Error(`${where}: content hash mismatch (expected ${hash}, got ${actual})`);
  try {
    return zlib.inflateSync(compressed);
  } catch (err) {
    throw new Error(`${where}: not a valid zlib stream (${(err as Error).message})`);
  }
}
