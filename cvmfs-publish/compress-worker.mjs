// Worker of the compression pool (plain JS so it loads without tsx): reads a file, makes its zlib
// object (object-compression.mjs), hashes the object bytes (SHA-1) and stores the object atomically.
// Small objects are hashed in memory, so their temp file goes next to the final name (data/xx/):
// creates and renames spread over 256 directories instead of all serialising on the lock of one
// data/txn directory (measured: that lock was the top kernel cost of a 50,000-file publish).
// Someone else may write to the source tree while it is published: a file of a scanned tree is
// opened through its directory as listed (O_NOFOLLOW | O_DIRECTORY, same device and inode, read via
// /proc/self/fd/N), itself with O_NOFOLLOW | O_NONBLOCK, and must be the regular file the scan saw
// (device, inode, size; checked on the descriptor by base/open-checked.mjs, the check
// base/safe-fs.ts#openRegularNoFollow makes on the main thread). A symlink, FIFO or other file
// swapped in is refused, never followed or hung on.
import { parentPort, workerData, threadId } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PROBE_BYTES, TAIL_PROBE_LIMIT, createObjectDeflate, deflateObject } from './object-compression.mjs';
import { CHANGED_HINT } from './source-listing.mjs';
import { OpenCheckError, openRegularChecked } from '../base/open-checked.mjs';
import { fdReader, storeChunks } from './chunk-store.mjs';
import { mightChunk } from './chunk-detector.mjs';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;
const PROC_FD = fs.existsSync('/proc/self/fd');

const { repoDir, chunking, chunkKey } = workerData;
/** Chunk cache of this worker: digest of a chunk's plain bytes -> its object (chunk-store.mjs). */
const digests = new Map(workerData.digests ?? []);
let seq = 0;
const tmpName = () => path.join(repoDir, 'data', 'txn', `${process.pid}.w${threadId}.${seq++}.tmp`);
const dest = (hash, suffix = '') => path.join(repoDir, 'data', hash.slice(0, 2), hash.slice(2) + suffix);
/** Temp name beside the object: starts with '.', so it never looks like an object (isTempObjectName in object-store.ts). */
const tmpBeside = (hash) => path.join(repoDir, 'data', hash.slice(0, 2), `.${hash.slice(2)}.${process.pid}.w${threadId}.${seq++}.tmp`);

/** Store object bytes under their name unless already there; true when this call created it. */
function writeObject(compressed, hash, suffix = '') {
  const d = dest(hash, suffix);
  if (fs.existsSync(d)) return false;
  const tmp = tmpBeside(hash);
  try {
    fs.writeFileSync(tmp, compressed);
    fs.renameSync(tmp, d);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return true;
}

/** A bulk object (one piece) from content in memory. */
function storeBuffer(buf) {
  const compressed = deflateObject(buf);
  const hash = crypto.createHash('sha1').update(compressed).digest('hex');
  return { hash, size: buf.length, created: writeObject(compressed, hash) };
}

/**
 * A file above the minimum chunk size: stored as chunks (P objects), or whole if it is one piece.
 * Chunk objects made before a failure are removed again (the job's file changed, say).
 */
async function storeChunked(job) {
  const content = job.content;
  const fd = content ? undefined : openSource(job);
  try {
    const readAt = content ? (buf, off, len, pos) => void content.copy(buf, off, pos, pos + len) : fdReader(fd, job.offset ?? 0, (missing) => short(job, missing));
    let r;
    try {
      r = await storeChunks(readAt, job.size, { params: chunking, key: chunkKey, digests, prev: job.prev, fd, fdStart: job.offset ?? 0, exists: (h, suffix) => fs.existsSync(dest(h, suffix)), write: writeObject });
    } catch (e) {
      for (const h of e.createdChunks ?? []) fs.rmSync(dest(h, 'P'), { force: true });
      throw e;
    }
    if (r.sole) return storeBuffer(r.sole);
    for (const c of r.chunks) digests.set(c.digest, c.hash);
    return { hash: '', size: job.size, created: false, chunks: r.chunks };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** A range job whose file ends before its range does. */
const shortRange = (job, missing) => new Error(`ends ${missing} bytes before the ${job.size} bytes at offset ${job.offset}`);

/** Bad input with the entry at fault and the fix (the pool rejects with a UsageError). */
class Refused extends Error {
  constructor(message, where, hint = CHANGED_HINT) {
    super(message);
    this.where = where;
    this.hint = hint;
  }
}
const changed = (job, what) => new Refused(`changed while being published (${what})`, job.path);

/** The directory of the last tree job, open (a batch holds files of few directories). */
let dirOpen;

function closeDir() {
  if (dirOpen) fs.closeSync(dirOpen.fd);
  dirOpen = undefined;
}

/** The path to open a tree job's file by: through its directory's descriptor, once that is the directory the scan listed. */
function pathInListedDir(job) {
  const cut = job.path.lastIndexOf('/');
  const dir = job.path.slice(0, cut);
  if (!dirOpen || dirOpen.path !== dir || dirOpen.dev !== job.dd || dirOpen.ino !== job.di) {
    closeDir();
    let fd;
    try {
      fd = fs.openSync(dir, O_RDONLY | O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK);
    } catch (e) {
      if (e.code === 'ELOOP' || e.code === 'ENOTDIR' || e.code === 'ENOENT') throw changed(job, 'its directory was removed or replaced');
      throw e;
    }
    const st = fs.fstatSync(fd);
    dirOpen = { path: dir, dev: job.dd, ino: job.di, fd };
    if (st.dev !== job.dd || st.ino !== job.di) {
      closeDir();
      throw changed(job, 'its directory was replaced');
    }
  }
  return PROC_FD ? `/proc/self/fd/${dirOpen.fd}/${job.path.slice(cut + 1)}` : job.path;
}

/**
 * Open a job's file without following a symlink or blocking on a FIFO; it must be a regular file,
 * and for a file of a scanned tree (job.dev set) the one scanned: same device, inode and size.
 */
function openSource(job) {
  const tree = job.dev !== undefined;
  try {
    return openRegularChecked(tree ? pathInListedDir(job) : job.path, tree ? job : undefined).fd;
  } catch (e) {
    if (e instanceof OpenCheckError) {
      if (tree) throw changed(job, { symlink: 'now a symbolic link', 'not-regular': 'no longer a regular file', replaced: 'replaced by another file', size: e.message }[e.reason]);
      throw new Refused(e.reason === 'symlink' ? 'is a symbolic link where a regular file was expected' : 'is not a regular file', job.path, 'give a regular file');
    }
    if (tree && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) throw changed(job, 'it was removed');
    throw e;
  }
}

/** Content that ended early: a tree file shrank, a range went past the end of its file. */
const short = (job, missing) => (job.offset === undefined ? changed(job, `${missing} bytes shorter while it was read`) : shortRange(job, missing));

/** A job's content: the whole file, or `size` bytes at `offset` (a file inside a layer blob). */
function readContent(job) {
  const buf = Buffer.allocUnsafe(job.size);
  const start = job.offset ?? 0;
  const fd = openSource(job);
  try {
    for (let got = 0; got < job.size; ) {
      const n = fs.readSync(fd, buf, got, job.size - got, start + got);
      if (n === 0) throw short(job, job.size - got);
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buf;
}

function storeSmall(job) {
  return storeBuffer(job.content ?? readContent(job));
}

/** Files above TAIL_PROBE_LIMIT: streamed, judged by their first bytes. */
async function storeBig(job) {
  const start = job.offset ?? 0;
  const head = Buffer.alloc(PROBE_BYTES);
  const fd = openSource(job);
  let got;
  try {
    got = fs.readSync(fd, head, 0, PROBE_BYTES, start);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  // the descriptor checked above is the one read (the stream closes it)
  const input = fs.createReadStream('', { fd, start, end: start + job.size - 1, highWaterMark: 1 << 20 });
  const sha = crypto.createHash('sha1');
  let size = 0;
  const tmp = tmpName();
  const count = new Transform({ transform(c, _e, cb) { size += c.length; cb(null, c); } });
  const hasher = new Transform({ transform(c, _e, cb) { sha.update(c); cb(null, c); } });
  try {
    await pipeline(input, count, createObjectDeflate(head.subarray(0, got)), hasher, fs.createWriteStream(tmp));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (size !== job.size) {
    fs.rmSync(tmp, { force: true });
    throw short(job, job.size - size);
  }
  const hash = sha.digest('hex');
  const d = dest(hash);
  const created = !fs.existsSync(d);
  if (created) fs.renameSync(tmp, d);
  else fs.rmSync(tmp, { force: true });
  return { hash, size, created };
}

parentPort.on('message', async (msg) => {
  const results = [];
  for (const job of msg.jobs) {
    try {
      if (job.content) job.content = Buffer.from(job.content.buffer, job.content.byteOffset, job.content.byteLength);
      if (chunking && mightChunk(job.size, chunking)) results.push(await storeChunked(job));
      else results.push(job.size > TAIL_PROBE_LIMIT ? await storeBig(job) : storeSmall(job));
    } catch (e) {
      results.push(e instanceof Refused ? { error: e.message, where: e.where, hint: e.hint } : { error: `${job.path}: ${e.message}` });
    }
  }
  closeDir();
  parentPort.postMessage({ id: msg.id, results });
});
