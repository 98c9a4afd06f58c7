// Worker of the compression pool (plain JS so it loads without tsx): reads a file, makes its zlib
// object (object-compression.mjs), hashes the object bytes (SHA-1) and stores the object atomically.
// Small objects are hashed in memory, so their temp file goes next to the final name (data/xx/):
// creates and renames spread over 256 directories instead of all serialising on the lock of one
// data/txn directory (measured: that lock was the top kernel cost of a 50,000-file publish).
import { parentPort, workerData, threadId } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PROBE_BYTES, TAIL_PROBE_LIMIT, createObjectDeflate, deflateObject } from './object-compression.mjs';

const { repoDir } = workerData;
let seq = 0;
const tmpName = () => path.join(repoDir, 'data', 'txn', `${process.pid}.w${threadId}.${seq++}.tmp`);
const dest = (hash) => path.join(repoDir, 'data', hash.slice(0, 2), hash.slice(2));
/** Temp name beside the object: starts with '.', so it never looks like an object (isTempObjectName in object-store.ts). */
const tmpBeside = (hash) => path.join(repoDir, 'data', hash.slice(0, 2), `.${hash.slice(2)}.${process.pid}.w${threadId}.${seq++}.tmp`);

/** A range job whose file ends before its range does. */
const shortRange = (job, missing) => new Error(`ends ${missing} bytes before the ${job.size} bytes at offset ${job.offset}`);

/** A job's content: the whole file, or `size` bytes at `offset` (a file inside a layer blob). */
function readContent(job) {
  if (job.offset === undefined) return fs.readFileSync(job.path);
  const buf = Buffer.allocUnsafe(job.size);
  const fd = fs.openSync(job.path, 'r');
  try {
    for (let got = 0; got < job.size; ) {
      const n = fs.readSync(fd, buf, got, job.size - got, job.offset + got);
      if (n === 0) throw shortRange(job, job.size - got);
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buf;
}

function storeSmall(job) {
  const buf = readContent(job);
  const compressed = deflateObject(buf);
  const hash = crypto.createHash('sha1').update(compressed).digest('hex');
  const d = dest(hash);
  const created = !fs.existsSync(d);
  if (created) {
    const tmp = tmpBeside(hash);
    try {
      fs.writeFileSync(tmp, compressed);
      fs.renameSync(tmp, d);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }
  return { hash, size: buf.length, created };
}

/** Files above TAIL_PROBE_LIMIT: streamed, judged by their first bytes. */
async function storeBig(job) {
  const start = job.offset ?? 0;
  const head = Buffer.alloc(PROBE_BYTES);
  const fd = fs.openSync(job.path, 'r');
  let got;
  try {
    got = fs.readSync(fd, head, 0, PROBE_BYTES, start);
  } finally {
    fs.closeSync(fd);
  }
  const range = job.offset === undefined ? { start } : { start, end: start + job.size - 1 };
  const sha = crypto.createHash('sha1');
  let size = 0;
  const tmp = tmpName();
  const count = new Transform({ transform(c, _e, cb) { size += c.length; cb(null, c); } });
  const hasher = new Transform({ transform(c, _e, cb) { sha.update(c); cb(null, c); } });
  try {
    await pipeline(fs.createReadStream(job.path, { ...range, highWaterMark: 1 << 20 }), count, createObjectDeflate(head.subarray(0, got)), hasher, fs.createWriteStream(tmp));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (job.offset !== undefined && size !== job.size) {
    fs.rmSync(tmp, { force: true });
    throw shortRange(job, job.size - size);
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
      results.push(job.size > TAIL_PROBE_LIMIT ? await storeBig(job) : storeSmall(job));
    } catch (e) {
      results.push({ error: `${job.path}: ${e.message}` });
    }
  }
  parentPort.postMessage({ id: msg.id, results });
});
