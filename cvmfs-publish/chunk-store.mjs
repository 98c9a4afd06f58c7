// File chunking in a compression worker (plain JS: workers load it without tsx): cuts a file's
// content at the cut points of chunk-detector.mjs and stores each chunk as its own object with the
// `P` suffix (cvmfs/crypto/hash.h kSuffixPartial), as cvmfs_server does (cvmfs/ingestion/
// task_chunk.cc). A file with a single piece is stored whole, as an ordinary object
// (task_write.cc IsSolePiece -> MakeBulkChunk).
//
// Republishing a large file must not recompress the chunks that did not change: each chunk is
// known by the SHA-256 of its plain bytes (with the compression mode), the chunk cache maps that
// digest to the object it became (checked to exist before it is reused; the object depends on the
// content alone). With the file's previous chunk list, a chunk whose bytes are unchanged is taken
// without running the detector again (its cut still holds: the bytes that decided it are the same,
// plus the byte at the cut, checked here), so only the edited region is scanned for cut points.
// Deflate runs on the libuv thread pool, a few chunks at once (compressChunk: 512 KiB pieces), so
// one large file keeps more than one core busy.
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { nextCut, thresholdOf } from './chunk-detector.mjs';
import { adler32, isIncompressible, storedBlocks, storedZlib, trailer } from './object-compression.mjs';

const IN_FLIGHT = 4;
const deflateRawAsync = (input, options) => new Promise((resolve, reject) => zlib.deflateRaw(input, options, (err, out) => (err ? reject(err) : resolve(out))));
const PIECE = 512 << 10;
const WINDOW = 32 << 10;

/**
 * A chunk as one zlib stream made pigz-style: 512 KiB pieces, each deflated at level 6 on the
 * thread pool (primed with the 32 KiB before it, ended by a sync flush) or, when the piece looks
 * incompressible, written as stored blocks; one header, the Adler-32 of the whole. A chunk that
 * mixes compressed and plain data costs deflate only where it pays, on every core. The bytes depend
 * on the content alone (the same chunk always gives the same object).
 */
async function compressChunk(data) {
  const parts = [];
  for (let off = 0; off < data.length; off += PIECE) {
    const end = Math.min(off + PIECE, data.length);
    const piece = data.subarray(off, end);
    const last = end === data.length;
    if (isIncompressible(piece)) parts.push(storedBlocks(piece, last));
    else {
      const options = { level: 6, chunkSize: PIECE + WINDOW, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH };
      if (off > 0) options.dictionary = data.subarray(Math.max(0, off - WINDOW), off);
      parts.push(deflateRawAsync(piece, options));
    }
  }
  return Buffer.concat([Buffer.from([0x78, 0x9c]), ...(await Promise.all(parts)), trailer(adler32(data))]);
}
const modeTag = () => (process.env.GRIDFORGE_STORE_INCOMPRESSIBLE === '0' ? 'D' : 'S');

/**
 * Cache key of a chunk's plain bytes: compression mode + SHA-256 (hex). Hashed here, not on the
 * thread pool (WebCrypto's digest copies its input first: 1 GiB republished cost 2.6 s of CPU
 * that way, 1.0 s so, with the reused buffers below).
 */
function digestOf(bytes) {
  return modeTag() + crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Samples of a chunk judged by their byte entropy (object-compression.mjs): one per MiB besides both ends. */
const SAMPLE_EVERY = 1 << 20;

/**
 * Whether a chunk becomes a zlib stream of stored blocks: only when its ends and a 4 KiB sample
 * of every MiB look incompressible (a chunk of up to 16 MiB may hold text between compressed
 * parts; its ends alone would not tell). Depends on the content alone: the same chunk, the same object.
 */
function storedChunk(data) {
  if (!isIncompressible(data)) return false;
  for (let at = SAMPLE_EVERY; at + 4096 < data.length; at += SAMPLE_EVERY) if (!isIncompressible(data.subarray(at, at + 4096))) return false;
  return true;
}

/** Whether the xor32 checksum of the 32 bytes ending at bytes[at] makes a cut there (the detector's rule). */
function cutsAt(bytes, at, threshold) {
  return nextCut(bytes.subarray(at - 32), 33, 32, 33, threshold) === 32;
}

/**
 * Store `size` bytes (read through `readAt(buf, off, len, pos)`, which fills exactly `len` bytes
 * or throws) as chunks. ctx: { params {min, avg, max}, digests: Map key -> object hash, prev:
 * previous chunk list of this file [{offset, size, hash, digest}] or undefined, exists(hash,
 * suffix), write(compressed, hash, suffix) -> created }. Returns { sole: Buffer } for a file of
 * one piece, else { chunks: [{offset, size, hash, digest, created}] }.
 */
export async function storeChunks(readAt, size, ctx) {
  const { min, max } = ctx.params;
  const threshold = thresholdOf(ctx.params.avg);
  const prevAt = new Map();
  const prev = ctx.prev ?? [];
  const prevEnd = prev.length > 0 ? prev[prev.length - 1].offset + prev[prev.length - 1].size : 0;
  prev.forEach((c, i) => prevAt.set(c.offset, i));

  // buffers for previous chunks, reused: a republish reads the whole file, and fresh memory for
  // each chunk costs as much CPU as the copy (page faults)
  const spare = [];
  const take = () => spare.pop() ?? Buffer.allocUnsafe(max + 1);
  const release = (b) => spare.length < 2 * IN_FLIGHT && spare.push(b);
  // A previous chunk still holds when its bytes are the same and so is what decided its cut: a cut
  // at `max` bytes, the file's end (then the file must still end there), or the byte at the cut.
  const verifying = new Map();
  const verify = (i) => {
    let v = verifying.get(i);
    if (v) return v;
    const c = prev[i];
    const endsFile = c.offset + c.size === prevEnd;
    const needsNext = c.size < max && !endsFile;
    if (c.offset + c.size + (needsNext ? 1 : 0) > size || (endsFile && c.offset + c.size !== size)) v = Promise.resolve(undefined);
    else {
      const bytes = take();
      readAt(bytes, 0, c.size + (needsNext ? 1 : 0), c.offset);
      const data = bytes.subarray(0, c.size);
      v = Promise.resolve(digestOf(data)).then((d) => {
        if (d === c.digest && (!needsNext || cutsAt(bytes, c.size, threshold))) return { data, bytes };
        release(bytes);
        return undefined;
      });
    }
    verifying.set(i, v);
    return v;
  };

  const chunks = [];
  const running = [];
  const finish = async (c, data, known) => {
    const digest = known?.digest ?? digestOf(data);
    let hash = known?.hash ?? ctx.digests.get(digest);
    let created = false;
    if (!hash || !ctx.exists(hash, 'P')) {
      const compressed = storedChunk(data) ? storedZlib(data) : await compressChunk(data);
      hash = crypto.createHash('sha1').update(compressed).digest('hex');
      created = ctx.write(compressed, hash, 'P');
    }
    Object.assign(c, { hash, digest, created });
  };
  const emit = async (offset, data, known, bytes) => {
    const c = { offset, size: data.length };
    chunks.push(c);
    const p = finish(c, data, known);
    if (bytes) p.then(() => release(bytes), () => undefined);
    p.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    running.push(p);
    if (running.length >= IN_FLIGHT) await running.shift();
  };

  try {
    let s = 0;
    let carry;
    while (s < size) {
      const i = prevAt.get(s);
      if (i !== undefined) {
        const ok = await verify(i);
        verifying.delete(i);
        if (ok) {
          await emit(s, ok.data, prev[i], ok.bytes);
          s += ok.data.length;
          carry = undefined;
          continue;
        }
      }
      const len = Math.min(max, size - s);
      const win = Buffer.allocUnsafe(len);
      const have = carry ? carry.copy(win) : 0;
      if (have < len) readAt(win, have, len - have, s + have);
      const cut = nextCut(win, len, min, max, threshold);
      if (s === 0 && cut === size) return { sole: win };
      carry = cut < len ? win.subarray(cut) : undefined;
      await emit(s, win.subarray(0, cut));
      s += cut;
    }
    await Promise.all(running);
  } catch (err) {
    await Promise.allSettled(running);
    err.createdChunks = chunks.filter((c) => c.created).map((c) => c.hash);
    throw err;
  }
  return { chunks };
}

/** Read exactly `len` bytes at `pos` of descriptor `fd` (a short read is reported by `onShort(missing)`). */
export function fdReader(fd, start, onShort) {
  return (buf, off, len, pos) => {
    for (let got = 0; got < len; ) {
      const n = fs.readSync(fd, buf, off + got, len - got, start + pos + got);
      if (n === 0) throw onShort(len - got);
      got += n;
    }
  };
}
