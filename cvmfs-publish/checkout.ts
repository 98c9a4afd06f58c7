/**
 * Materialise a revision as a plain directory tree (for bind mounts on hosts without a cvmfs
 * client): files, symlinks (targets verbatim), hard links within a directory, modes, owners (as
 * root), mtimes. Written to a temporary sibling and renamed into place at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../scripts/lib/errors.ts';
import { openRepository, type ReaderOptions } from './reader.ts';

export interface CheckoutResult {
  dest: string;
  revision: number;
  rootHash: string;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

export async function checkout(repoDirOrUrl: string, dest: string, opts: ReaderOptions & { path?: string } = {}): Promise<CheckoutResult> {
  const target = path.resolve(dest);
  if (fs.existsSync(target) && (!fs.statSync(target).isDirectory() || fs.readdirSync(target).length > 0)) {
    throw new UsageError(`${target} exists and is not an empty directory`, { where: target, hint: 'check out into a new directory' });
  }
  const reader = await openRepository(repoDirOrUrl, opts);
  const tmp = `${target}.checkout-${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const res: CheckoutResult = { dest: target, revision: reader.revision, rootHash: reader.rootHash, files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const dirTimes: [string, number, number][] = [];
  const hlFirst = new Map<string, string>();
  const base = opts.path ?? '';
  const isRoot = geteuid() === 0;
  try {
    for await (const e of reader.walk(base)) {
      const rel = path.relative(base === '' ? '/' : base.startsWith('/') ? base : `/${base}`, e.path);
      const out = rel === '' ? tmp : path.join(tmp, rel);
      if (e.type === 'dir') {
        fs.mkdirSync(out, { recursive: true, mode: 0o700 });
        dirTimes.push([out, e.mode & 0o7777, e.mtime]);
        if (isRoot) fs.lchownSync(out, e.uid, e.gid);
        res.dirs++;
      } else if (e.type === 'symlink') {
        fs.symlinkSync(e.target!, out);
        if (isRoot) fs.lchownSync(out, e.uid, e.gid);
        res.symlinks++;
      } else if (e.type === 'file') {
        const hk = e.hardlinkGroup ? `${path.dirname(e.path)}#${e.hardlinkGroup}` : '';
        if (hk && hlFirst.has(hk)) {
          fs.linkSync(hlFirst.get(hk)!, out);
        } else {
          fs.writeFileSync(out, await reader.readFile(e.path), { mode: 0o600 });
          if (isRoot) fs.chownSync(out, e.uid, e.gid);
          fs.chmodSync(out, e.mode & 0o7777);
          fs.utimesSync(out, e.mtime, e.mtime);
          if (hk) hlFirst.set(hk, out);
          res.bytes += e.size;
        }
        res.files++;
      }
    }
    for (const [d, mode, mtime] of dirTimes.reverse()) {
      fs.chmodSync(d, mode);
      fs.utimesSync(d, mtime, mtime);
    }
    if (fs.existsSync(target)) fs.rmdirSync(target);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return res;
}

function geteuid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}
