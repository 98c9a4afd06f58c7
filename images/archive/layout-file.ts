/**
 * Files of an OCI layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): each must be
 * a regular file reached through real directories (no symlink, FIFO, device or directory in its
 * place), JSON is read with a size bound (base/safe-fs.ts readBoundedFile, O_NOFOLLOW, fstat
 * checked), and every failure is a UsageError naming the file and the fix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { readBoundedFile } from '../../base/safe-fs.ts';

const FIX = 'The OCI layout is incomplete or was tampered with; copy or export it again (blobs must be regular files, not links).';

function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'a regular file';
}

function lstatIn(dir: string, rel: string): fs.Stats {
  try {
    return fs.lstatSync(path.join(dir, rel));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`${rel} is missing`, { where: dir, hint: FIX });
    if (code === 'ENOTDIR') throw new UsageError(`${rel}: a parent of it is not a directory`, { where: dir, hint: FIX });
    throw new UsageError(`cannot read ${rel}: ${code ?? (e as Error).message}`, { where: dir, hint: 'Check the permissions of the layout directory.' });
  }
}

/** Every directory between `dir` and `rel` must be a real directory (a symlinked `blobs/` could point anywhere). */
function checkParents(dir: string, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    const st = lstatIn(dir, sub);
    if (!st.isDirectory()) throw new UsageError(`${sub} is ${kindOf(st)}, not a directory`, { where: dir, hint: FIX });
  }
}

/** Check that `rel` is a regular file inside `dir` and return its stat (dev, ino, size). */
export function statLayoutFile(dir: string, rel: string): fs.Stats {
  checkParents(dir, rel);
  const st = lstatIn(dir, rel);
  if (!st.isFile()) throw new UsageError(`${rel} is ${kindOf(st)}, not a regular file`, { where: dir, hint: FIX });
  return st;
}

/** Read a small regular file of the layout whole, at most `max` bytes. */
export function readLayoutFile(dir: string, rel: string, max: number): Buffer {
  statLayoutFile(dir, rel);
  try {
    return readBoundedFile(path.join(dir, rel), `${dir}: ${rel}`, max);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${rel}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { where: dir, hint: FIX });
  }
}
