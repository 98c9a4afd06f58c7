/**
 * The slice of the repository API (`cvmfs-publish/index.ts`) that releases use, plus
 * two helpers on top of it: compare planned content with what a revision holds (through the
 * reader, by content hash) and apply planned entries inside a transaction.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { openRepository, openTransaction } from '../../cvmfs-publish/index.ts';
import { contentHash, type PlannedEntry } from './content.ts';

export { openRepository, openTransaction };

export type Reader = Awaited<ReturnType<typeof openRepository>>;
export type Tx = Awaited<ReturnType<typeof openTransaction>>;

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

export function meta(mode: number, mtime = Math.floor(Date.now() / 1000)): Meta {
  return { mode, uid: 0, gid: 0, mtime };
}

/** Is the path present in the reader's revision? */
export async function exists(reader: Reader, path: string): Promise<boolean> {
  return (await reader.stat(path)) !== undefined;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Differences between planned entries and the revision: paths whose type, permission bits, link
 * target or content differ, or that are missing. `extraUnder` lists directories whose extra
 * children (present in the revision, not planned) also count as differences.
 */
export async function diffPlanned(reader: Reader, entries: PlannedEntry[], extraUnder: string[] = []): Promise<string[]> {
  const diffs: string[] = [];
  for (const e of entries) {
    const st = await reader.stat(e.path);
    if (!st) { diffs.push(`${e.path} (missing)`); continue; }
    if (e.kind === 'dir') {
      if (st.type !== 'dir') diffs.push(`${e.path} (not a directory)`);
      continue;
    }
    if (e.kind === 'symlink') {
      if (st.type !== 'symlink' || st.target !== e.target) diffs.push(`${e.path} (link target)`);
      continue;
    }
    if (st.type !== 'file') { diffs.push(`${e.path} (not a file)`); continue; }
    if ((st.mode & 0o777) !== (e.mode & 0o777)) { diffs.push(`${e.path} (mode)`); continue; }
    if (sha256(await reader.readFile(e.path)) !== (await contentHash(e))) diffs.push(`${e.path} (content)`);
  }
  const planned = new Set(entries.map((e) => e.path));
  for (const dir of extraUnder) {
    if (!(await exists(reader, dir))) continue;
    for await (const s of reader.walk(dir)) {
      const p = s.path.replace(/^\//, '');
      if (p !== dir && !planned.has(p) && !p.endsWith('/.cvmfscatalog')) diffs.push(`${p} (not in this release)`);
    }
  }
  return diffs;
}

/** Put planned entries into a transaction (parents first: the list is in that order). */
export async function applyPlanned(tx: Tx, entries: PlannedEntry[], mtime = Math.floor(Date.now() / 1000)): Promise<void> {
  for (const e of entries) {
    if (e.kind === 'dir') await tx.mkdir(e.path, meta(e.mode, mtime));
    else if (e.kind === 'symlink') await tx.symlink(e.path, e.target, meta(0o777, mtime));
    else if ('data' in e) await tx.putFile(e.path, e.data, meta(e.mode, mtime));
    else await tx.putFile(e.path, createReadStream(e.source), meta(e.mode, mtime));
  }
}

/**
 * Differences between a local directory tree and a directory of the revision (content hash, mode,
 * link targets, missing and extra entries). Used for the idempotent re-release of the Java runtime.
 */
export async function diffTree(reader: Reader, repoPath: string, localDir: string): Promise<string[]> {
  const diffs: string[] = [];
  const seen = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    const abs = join(localDir, rel);
    const st = await lstat(abs);
    const rp = rel ? `${repoPath}/${rel}` : repoPath;
    seen.add(rp);
    const rs = await reader.stat(rp);
    if (!rs) { diffs.push(`${rp} (missing)`); return; }
    if (st.isDirectory()) {
      if (rs.type !== 'dir') { diffs.push(`${rp} (not a directory)`); return; }
      for (const e of (await readdir(abs)).sort()) await walk(rel ? posix.join(rel, e) : e);
    } else if (st.isSymbolicLink()) {
      if (rs.type !== 'symlink' || rs.target !== (await readlink(abs))) diffs.push(`${rp} (link target)`);
    } else if (st.isFile()) {
      if (rs.type !== 'file' || (rs.mode & 0o777) !== (st.mode & 0o777) || rs.size !== st.size) { diffs.push(`${rp} (type, mode or size)`); return; }
      if (sha256(await reader.readFile(rp)) !== sha256(await readFile(abs))) diffs.push(`${rp} (content)`);
    }
  };
  await walk('');
  if (await exists(reader, repoPath)) {
    for await (const s of reader.walk(repoPath)) {
      const p = s.path.replace(/^\//, '');
      // .cvmfscatalog markers are the repository's own (nested catalogs it chose to create).
      if (!seen.has(p) && !p.endsWith('/.cvmfscatalog')) diffs.push(`${p} (not in this release)`);
    }
  }
  return diffs;
}
