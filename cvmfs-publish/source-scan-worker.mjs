// Scan worker (plain JS, loads without tsx): takes the next unit (a directory whose whole subtree it
// lists, with the identity its parent listed for it) from the shared counter until none is left, and posts its records in chunks.
import { parentPort, workerData } from 'node:worker_threads';
import { Listing, ScanError, listDirectory } from './source-listing.mjs';

const CHUNK = 2048;
const { next, maxFileSize } = workerData;
const counter = new Int32Array(next);

parentPort.once('message', (units) => {
  const listing = new Listing(CHUNK + 64);
  let unit = -1;
  const post = (last) => {
    const m = listing.take();
    parentPort.postMessage({ unit, last, ...m }, [m.nums.buffer]);
  };
  try {
    for (;;) {
      unit = Atomics.add(counter, 0, 1);
      if (unit >= units.length) break;
      listDirectory(units[unit].path, true, maxFileSize, listing, CHUNK, () => post(false), units[unit].id);
      post(true);
    }
    parentPort.postMessage({ done: true });
  } catch (err) {
    const e = err instanceof ScanError ? { message: err.message, where: err.where, hint: err.hint } : { message: String(err?.message ?? err) };
    parentPort.postMessage({ error: e });
  }
});
