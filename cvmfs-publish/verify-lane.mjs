// The second lane of a republished large file (chunk-store.mjs startLane): checks whether the
// later previous chunks of the file still hold (chunkHolder), reading the descriptor the
// compression worker opened (worker threads share the process's descriptors), and posts one
// boolean per chunk. Plain JS: workers load it without tsx.
import { parentPort, workerData } from 'node:worker_threads';
import { chunkHolder, fdReader } from './chunk-store.mjs';

const { fd, start, chunks, ...v } = workerData;
const readAt = fdReader(fd, start, () => new Error('the file became shorter while it was read'));
const holds = chunkHolder({ ...v, key: Buffer.from(v.key), readAt });
parentPort.postMessage(chunks.map((c) => holds(c)));
