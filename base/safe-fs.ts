/**
 * File operations that stay safe when someone else can write beside us (a shared /tmp, a tree
 * another user owns, a repository handed over by a stranger):
 * - temporaries get random names and are created exclusively with O_NOFOLLOW, so a planted
 *   symlink or file at a guessed name is never followed or reused;
 * - reads open with O_NOFOLLOW | O_NONBLOCK and check the descriptor (fstat), so a path swapped
 *   for a symlink, FIFO or device after it was scanned is refused instead of followed or hung on;
 * - JSON-sized reads are bounded, so a blob that is /dev/zero or 1 GiB cannot exhaust memory.
 * See the CVE history of docker cp, containerd and umoci for why each rule exists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UsageError } from './errors.ts';
import { OpenCheckError, openRegularChecked } from './open-checked.mjs';

const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** A random name for a temporary beside `target`: `.<base>.<12 hex>.tmp` (never an object or result name). */
export function tempNameBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Create a new file exclusively (never follows or reuses an existing path) and return its descriptor. */
export function openExclusive(file: string, mode = 0o600): number {
  return fs.openSync(file, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, mode);
}

export interface AtomicWriteOptions {
  /** Final permission bits (applied with fchmod, so umask does not change them). Default 0644. */
  mode?: number;
  /** fsync the data before the rename (records that must survive a crash). */
  durable?: boolean;
}

/**
 * Write `data` to `target` all at once: an exclusive temporary beside it, then rename. A reader
 * sees the old file or the new one, never half; a failure leaves the old file and no temporary.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = tempNameBeside(target);
  const fd = openExclusive(tmp, 0o600);
  try {
    try {
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fchmodSync(fd, opts.mode ?? 0o644);
      if (opts.durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Create a private (0700) directory with a random name beside `target`, for building a result to rename into place. */
export function makeTempDirBeside(target: string): string {
  const abs = path.resolve(target);
  return fs.mkdtempSync(path.join(path.dirname(abs), `.${path.basename(abs)}.`));
}

/** What a scan saw of a file; a later open must find the same file. */
export interface ExpectedFile {
  dev: number;
  ino: number;
  size: number;
}

/**
 * Open a regular file for reading without following a symlink in its last component and
 * without blocking on a FIFO; refuse anything but a regular file, or (with `expect`) a file
 * other than the one scanned. `label` names the entry in the error.
 */
export function openRegularNoFollow(file: string, label: string, expect?: ExpectedFile): { fd: number; stat: fs.Stats } {
  try {
    return openRegularChecked(file, expect);
  } catch (err) {
    if (!(err instanceof OpenCheckError)) throw err;
    if (err.reason === 'symlink') throw new UsageError('is a symbolic link where a regular file was expected', { where: label, hint: 'Give a regular file; the path may have been swapped while gridforge read the tree, so make sure nobody else writes to it.' });
    const messages = {
      'not-regular': 'is not a regular file (it may have been replaced since it was scanned)',
      replaced: 'was replaced by another file since it was scanned',
      size: `changed size since it was scanned (${expect?.size} -> ${err.stat?.size} bytes)`,
    };
    throw new UsageError(messages[err.reason], { where: label, hint: 'Make sure nobody else changes the tree while gridforge reads it, then run the command again.' });
  }
}

/** Open a directory without following a symlink (for walking a tree someone else can write to). */
export function openDirNoFollow(dir: string): number {
  return fs.openSync(dir, O_RDONLY | O_NOFOLLOW | O_DIRECTORY);
}

/**
 * Read a small regular file (JSON metadata, a config blob) with a size bound, refusing
 * symlinks, FIFOs and devices. `label` names it in errors; `maxBytes` defaults to 8 MiB.
 */
export function readBoundedFile(file: string, label: string, maxBytes = 8 * 1024 * 1024): Buffer {
  const { fd, stat } = openRegularNoFollow(file, label);
  try {
    if (stat.size > maxBytes) {
      throw new UsageError(`is ${stat.size} bytes, more than the ${maxBytes} bytes allowed for it`, { where: label, hint: 'This is not a genuine metadata file; check where the input came from.' });
    }
    const buf = Buffer.alloc(stat.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}

/** True when `name` is one path component: not empty, not `.` or `..`, no `/`, no NUL. */
export function isSingleComponent(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/**
 * Check, before any work starts, the path a command will create its result at: the parent must
 * be an existing directory and `target`, if it exists, a `kind` reached without a symlink.
 * `flag` names the option (e.g. `--output`) in the error. Returns the target's lstat, if any.
 * Without this a path under a file or an existing directory given for a file only fails at the
 * end with a raw ENOTDIR / EISDIR.
 */
export function checkOutputTarget(target: string, flag: string, kind: 'file' | 'dir'): fs.Stats | undefined {
  const abs = path.resolve(target);
  const parent = path.dirname(abs);
  let pst: fs.Stats | undefined;
  try {
    pst = fs.statSync(parent);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`${flag}: parent directory ${parent} does not exist`, { where: target, hint: `Create ${parent} first or pass another ${flag}.` });
    if (code !== 'ENOTDIR') throw err;
  }
  if (!pst?.isDirectory()) throw new UsageError(`${flag}: ${parent} is not a directory, so nothing can be created in it`, { where: target, hint: `Pass a ${flag} path whose parent is a directory.` });
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (st.isSymbolicLink()) throw new UsageError(`${flag}: is a symbolic link`, { where: target, hint: `Pass the real path (gridforge does not write through a symlink) or remove the link.` });
  if (kind === 'file' && st.isDirectory()) throw new UsageError(`${flag}: is a directory, but ${flag} names the file to write`, { where: target, hint: `Pass a file path such as ${path.join(target, 'image.tar')}.` });
  if (kind === 'file' && !st.isFile()) throw new UsageError(`${flag}: exists and is not a regular file`, { where: target, hint: `Remove it or pass another ${flag}.` });
  if (kind === 'dir' && !st.isDirectory()) throw new UsageError(`${flag}: exists and is not a directory`, { where: target, hint: `Remove it or pass another ${flag} (a new or empty directory).` });
  return st;
}

/**
 * writeFileAtomic with the write on the thread pool, for large caches written while the caller
 * goes on working: the same exclusive no-follow temporary beside `target`, then rename; a failure
 * leaves the old file and no temporary.
 */
export async function writeFileAtomicAsync(target: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempNameBeside(target);
  const fh = await fs.promises.open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600);
  try {
    try {
      await fh.writeFile(data);
      await fh.chmod(opts.mode ?? 0o644);
      if (opts.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, target);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

/** This process's effective uid, for ownership checks (-1 where the platform has none). */
export function effectiveUid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}
