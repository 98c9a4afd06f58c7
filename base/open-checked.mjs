// Open a regular file without following a symlink in its last component and without blocking on a
// FIFO, then check the descriptor (fstat): a regular file, and with `expect` the very file a scan
// saw (device, inode, size). Plain JavaScript so the publisher's worker threads
// (cvmfs-publish/compress-worker.mjs) load it as they are; base/safe-fs.ts#openRegularNoFollow
// wraps it with gridforge's errors. A refusal is an OpenCheckError whose `reason` callers turn into
// their own message; other open errors (ENOENT, EACCES, ...) are thrown as they are.
import fs from 'node:fs';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** Why a path is not the regular file expected: 'symlink', 'not-regular', 'replaced' or 'size'; `stat` is what was found. */
export class OpenCheckError extends Error {
  constructor(reason, message, stat) {
    super(message);
    this.reason = reason;
    this.stat = stat;
  }
}

/** Open `file` read-only as described above; returns `{ fd, stat }`, the descriptor owned by the caller. */
export function openRegularChecked(file, expect) {
  let fd;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (err.code === 'ELOOP') throw new OpenCheckError('symlink', 'is a symbolic link');
    throw err;
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new OpenCheckError('not-regular', 'is not a regular file', stat);
    if (expect && (stat.dev !== expect.dev || stat.ino !== expect.ino)) throw new OpenCheckError('replaced', 'was replaced by another file', stat);
    if (expect && stat.size !== expect.size) throw new OpenCheckError('size', `size ${expect.size} -> ${stat.size} bytes`, stat);
    return { fd, stat };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}
