// Worker of the compression pool (plain JS so it loads without tsx): reads a file, deflates it
// (zlib default level), hashes the compressed bytes (SHA-1) and stores the object atomically.
import { parentPort, workerData, threadId } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const { repoDir, bigFile } = workerData;
let seq = 0;
const tmpName = () => path.join(repoDir, 'data', 'txn', `${process.pid}.w${threadId}.${seq++}.tmp`);
const dest = (hash) => path.join(repoDir, 'data', hash.slice(0, 2), hash.slice(2));

function storeSmall(file) {
  const buf = fs.readFileSync(file);
  const compressed = zlib.deflateSync(buf);
  const hash = crypto.createHash('sha1').update(compressed).digest('hex');
  const d = dest(hash);
  if (!fs.existsSync(d)) {
    const tmp = tmpName();
    fs.writeFileSync(tmp, compressed);
    fs.renameSync(tmp, d);
  }
  return { hash, size: buf.length };
}

async function storeBig(file) {
  const sha = crypto.createHash('sha1');
  let size = 0;
  const tmp = tmpName();
  const count = new Transform({ transform(c, _e, cb) { size += c.length; cb(null, c); } });
  const hasher = new Transform({ transform(c, _e, cb) { sha.update(c); cb(null, c); } });
  try {
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), count, zlib.createDeflate(), hasher, fs.createWriteStream(tmp));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const hash = sha.digest('hex');
  const d = dest(hash);
  if (fs.existsSync(d)) fs.rmSync(tmp, { force: true });
  else fs.renameSync(tmp, d);
  return { hash, size };
}

parentPort.on('message', async (msg) => {
  const results = [];
  for (const job of msg.jobs) {
    try {
      results.push(job.size > bigFile ? await storeBig(job.path) : storeSmall(job.path));
    } catch (e) {
      results.push({ error: `${job.path}: ${e.message}` });
    }
  }
  parentPort.postMessage({ id: msg.id, results });
});
