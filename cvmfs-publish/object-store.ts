/**
 * Content-addressed object store under `<repo>/data/`: zlib stream (deflate level 6, or stored
 * blocks for incompressible content: object-compression.mjs), named by the SHA-1 of those bytes,
 * written to a temp file first and renamed to `data/xx/<rest>` (atomic; a killed writer leaves at
 * most a temp file that `repo abort` removes). Streams go through `data/txn/` (their hash is known
 * only at the end); objects hashed in memory are written beside their final name, as
 * `.<rest>.<12 hex>.tmp` here (base/safe-fs.ts writeFileAtomic) or `.<rest>.<pid>.w<thread>.<n>.tmp`
 * by compress-worker.mjs; a leading dot never matches an object name.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { writeFileAtomic } from '../base/safe-fs.ts';
import { objectPath, type ObjectSuffix } from './format.ts';
import { PROBE_BYTES, TAIL_PROBE_LIMIT, createObjectDeflate, deflateChunked, deflateObject } from './object-compression.mjs';

export function compressBuffer(content: Buffer): { compressed: Buffer; hash: string } {
  const compressed = deflateObject(content);
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
  /** `onCreate(file)`: called for each object this store writes that was not there (a transaction removes them again if it fails). */
  constructor(
    readonly repoDir: string,
    private readonly onCreate?: (file: string) => void,
  ) {}

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
    writeFileAtomic(dest, compressed);
    this.onCreate?.(dest);
  }

  /** Compress, hash and store a buffer; returns the content hash and the compressed size. */
  putBuffer(content: Buffer, suffix: ObjectSuffix = ''): { hash: string; compressedSize: number } {
    const { compressed, hash } = compressBuffer(content);
    this.storeCompressed(compressed, hash, suffix);
    return { hash, compressedSize: compressed.length };
  }

  /** Like putBuffer, deflating on every core (deflateChunked): for catalogs, which are megabytes and on the commit path. */
  async putBufferParallel(content: Buffer, suffix: ObjectSuffix = ''): Promise<{ hash: string; compressedSize: number }> {
    const compressed = await deflateChunked(content);
    const hash = sha1Hex(compressed);
    this.storeCompressed(compressed, hash, suffix);
    return { hash, compressedSize: compressed.length };
  }

  /**
   * Store content read from a stream; returns hash and uncompressed size. Content up to
   * TAIL_PROBE_LIMIT is gathered in memory and stored as a buffer would be (the same object as the
   * same bytes from a file); larger content streams through deflate + SHA-1 into data/txn.
   */
  async putStream(input: Readable, suffix: ObjectSuffix = '', maxSize = Number.MAX_SAFE_INTEGER): Promise<{ hash: string; size: number }> {
    const tooBig = () => new Error(`content exceeds the size limit of ${maxSize} bytes`);
    const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const start: Buffer[] = [];
    let size = 0;
    let ended = false;
    try {
      while (size <= TAIL_PROBE_LIMIT) {
        const r = await it.next();
        if (r.done) {
          ended = true;
          break;
        }
        size += r.value.length;
        if (size > maxSize) throw tooBig();
        start.push(r.value);
      }
    } catch (err) {
      input.destroy();
      throw err;
    }
    const first = Buffer.concat(start, size);
    if (ended) return { hash: this.putBuffer(first, suffix).hash, size };
    const rest = Readable.from(
      (async function* () {
        yield first;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })(),
      { objectMode: false },
    );
    const sha = createHash('sha1');
    size = 0;
    const tmp = this.tempFile();
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxSize) cb(tooBig());
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
      await pipeline(rest, counter, createObjectDeflate(first.subarray(0, PROBE_BYTES)), hasher, fs.createWriteStream(tmp));
    } catch (err) {
      input.destroy();
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const hash = sha.digest('hex');
    const dest = this.file(hash, suffix);
    if (fs.existsSync(dest)) fs.rmSync(tmp, { force: true });
    else {
      fs.renameSync(tmp, dest);
      this.onCreate?.(dest);
    }
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
