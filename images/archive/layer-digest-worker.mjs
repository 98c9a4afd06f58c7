// Worker of the engine layer-store reader (plain JS so it loads without tsx): rebuilds each layer's
// tar stream the way `docker save` does (tar-split segments + file contents from the layer's diff
// directory) and hashes it, so the DiffID is verified over the whole stream.
// Files are opened with O_NOFOLLOW and must be regular files; parents were checked by the reader
// (engine-store.ts), which refuses a layer with a symlinked parent before any output is kept.
import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { tarSplitEntries } from './tar-split-entries.mjs';

const { layers } = workerData;
let diffDir = '';

async function digest(tarSplit) {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  for await (const e of tarSplitEntries(tarSplit)) {
    if (e.type === 2) {
      const b = Buffer.from(e.payload ?? '', 'base64');
      hash.update(b);
      total += b.length;
      continue;
    }
    const size = e.size ?? 0;
    if (e.type !== 1 || size === 0) continue;
    // names were checked by the reader (no '..', no symlinked parent) before any output is kept
    const rel = path.posix.normalize(e.name.replace(/^\/+/, ''));
    if (e.name_raw || rel.startsWith('../') || rel === '..') return { failed: `entry ${e.name} cannot be read from the layer directory` };
    let fd;
    try {
      fd = fs.openSync(path.join(diffDir, rel), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (err) {
      return { failed: `cannot open ${e.name} in the layer directory: ${err.code ?? err.message}` };
    }
    try {
      if (!fs.fstatSync(fd).isFile()) return { failed: `${e.name} is not a regular file in the layer directory` };
      let left = size;
      while (left > 0) {
        const n = fs.readSync(fd, buf, 0, Math.min(left, buf.length), null);
        if (n === 0) return { failed: `${e.name} is shorter in the layer directory than in the layer` };
        hash.update(buf.subarray(0, n));
        left -= n;
      }
      total += size;
    } finally {
      fs.closeSync(fd);
    }
  }
  return { digest: `sha256:${hash.digest('hex')}`, total };
}

async function run() {
  const results = [];
  for (let i = 0; i < layers.length; i++) {
    diffDir = layers[i].diffDir;
    let r;
    try {
      r = await digest(layers[i].tarSplit);
    } catch (err) {
      r = { failed: `cannot read the layer metadata: ${err.message}` };
    }
    if (r.failed) return { ...r, layer: i };
    results.push(r);
  }
  return { results };
}

run().then((r) => parentPort.postMessage(r));
