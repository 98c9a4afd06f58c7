/**
 * Materialise a revision as a plain directory tree (for bind mounts on hosts without a cvmfs
 * client): files, symlinks (targets verbatim), hard links within a directory, modes, owners (as
 * root), mtimes. Built in a private directory with a random name beside the destination
 * (base/safe-fs.ts makeTempDirBeside) and renamed into place at the end.
 *
 * The catalogs come from whoever signed the repository, so nothing they say may reach outside
 * that directory: every entry path is made of single components (the reader already refuses
 * catalogs that are not, catalog-names.ts; checked again here), every entry is created
 * exclusively (mkdir, symlink, O_CREAT|O_EXCL|O_NOFOLLOW) inside a directory this checkout
 * created itself (so never through a symlink), and owners and modes are only ever set on
 * descriptors of what it created. setuid/setgid bits are dropped unless `keepSetuid` is set.
 */
import fs from 'node:fs';
import path from 'node:path';
import { removeOnInterrupt } from '../base/cleanup.ts';
import { UsageError } from '../base/errors.ts';
import { effectiveUid as euid, isSingleComponent, makeTempDirBeside, openDirNoFollow, openExclusive } from '../base/safe-fs.ts';
import { normalizeRepoPath } from './format.ts';
import { openRepository, type ReaderOptions, type RepositoryReader, type StatResult } from './reader.ts';

export interface CheckoutOptions extends ReaderOptions {
  /** only this subtree (a directory) */
  path?: string;
  /** keep setuid/setgid bits from the catalog (default: stripped, so a catalog cannot plant a setuid-root file) */
  keepSetuid?: boolean;
}

export interface CheckoutResult {
  dest: string;
  revision: number;
  rootHash: string;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/** The destination must be absent or an empty real directory (a symlink there is refused, never followed). */
function checkDest(target: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (st.isSymbolicLink()) throw new UsageError(`${target} is a symbolic link`, { where: target, hint: 'check out into a new directory (gridforge does not follow a symlink at the destination)' });
  if (!st.isDirectory() || fs.readdirSync(target).length > 0) {
    throw new UsageError(`${target} exists and is not an empty directory`, { where: target, hint: 'check out into a new directory' });
  }
}

function badEntry(entryPath: string, problem: string): UsageError {
  return new UsageError(`refusing to check out ${JSON.stringify(entryPath)}: ${problem}`, { where: entryPath, hint: 'the catalog is forged or corrupt; run `gridforge repo verify` on the repository and do not use it' });
}

/** Components of `entryPath` below `base`, each one a single path component. */
function relativeParts(entryPath: string, base: string): string[] {
  if (entryPath === (base || '/')) return [];
  if (!entryPath.startsWith(`${base}/`)) throw badEntry(entryPath, `it lies outside ${base || '/'}`);
  const parts = entryPath.slice(base.length + 1).split('/');
  if (!parts.every(isSingleComponent)) throw badEntry(entryPath, 'its path has an empty, "." or ".." component');
  return parts;
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

/** Writes the entries of one walk into `root` (a private directory this checkout created). */
class Materialiser {
  /** directories this checkout created (the only places it creates anything in) */
  private readonly made = new Set<string>();
  private readonly dirs: [string, StatResult][] = [];
  private readonly hlFirst = new Map<string, string>();
  private readonly asRoot = euid() === 0;
  private readonly modeMask: number;

  constructor(
    private readonly root: string,
    private readonly reader: RepositoryReader,
    private readonly res: CheckoutResult,
    keepSetuid: boolean,
  ) {
    this.made.add(root);
    this.modeMask = keepSetuid ? 0o7777 : 0o1777;
  }

  /** Where entry `e` goes; its parent must be a directory this checkout made (never a symlink). */
  private place(e: StatResult, parts: string[]): string {
    const parent = path.join(this.root, ...parts.slice(0, -1));
    const st = fs.lstatSync(parent);
    if (!this.made.has(parent) || !st.isDirectory() || st.isSymbolicLink()) throw badEntry(e.path, 'its parent is not a directory this checkout created');
    return path.join(parent, parts[parts.length - 1]);
  }

  async add(e: StatResult, parts: string[]): Promise<void> {
    if (parts.length === 0) {
      if (e.type !== 'dir') throw badEntry(e.path, `it is a ${e.type}; checkout materialises a directory (use \`gridforge repo cat\` for a file)`);
      this.dirs.push([this.root, e]);
      this.res.dirs++;
      return;
    }
    const out = this.place(e, parts);
    if (e.type === 'dir') {
      fs.mkdirSync(out, { mode: 0o700 });
      this.made.add(out);
      this.dirs.push([out, e]);
      this.res.dirs++;
    } else if (e.type === 'symlink') {
      fs.symlinkSync(e.target!, out);
      if (this.asRoot) fs.lchownSync(out, e.uid, e.gid);
      this.res.symlinks++;
    } else if (e.type === 'file') {
      await this.file(e, out);
      this.res.files++;
    }
  }

  private async file(e: StatResult, out: string): Promise<void> {
    const hk = e.hardlinkGroup ? `${path.posix.dirname(e.path)}#${e.hardlinkGroup}` : '';
    const first = hk ? this.hlFirst.get(hk) : undefined;
    if (first) {
      fs.linkSync(first, out);
      return;
    }
    const fd = openExclusive(out, 0o600);
    try {
      for await (const data of this.reader.stream(e.path)) writeAll(fd, data); // a chunked file one chunk at a time
      if (this.asRoot) fs.fchownSync(fd, e.uid, e.gid); // before fchmod: a chown clears setuid bits
      fs.fchmodSync(fd, e.mode & this.modeMask);
      fs.futimesSync(fd, e.mtime, e.mtime);
    } finally {
      fs.closeSync(fd);
    }
    if (hk) this.hlFirst.set(hk, out);
    this.res.bytes += e.size;
  }

  /** Owners, modes and times of the directories, deepest first, each through a no-follow descriptor. */
  finishDirs(): void {
    for (const [d, e] of [...this.dirs].reverse()) {
      const fd = openDirNoFollow(d);
      try {
        if (this.asRoot) fs.fchownSync(fd, e.uid, e.gid);
        fs.fchmodSync(fd, e.mode & this.modeMask);
        fs.futimesSync(fd, e.mtime, e.mtime);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}

export async function checkout(repoDirOrUrl: string, dest: string, opts: CheckoutOptions = {}): Promise<CheckoutResult> {
  const target = path.resolve(dest);
  checkDest(target);
  const base = normalizeRepoPath(opts.path ?? '');
  const reader = await openRepository(repoDirOrUrl, opts);
  const top = await reader.stat(base);
  if (!top) throw new UsageError(`${base || '/'} does not exist in revision ${reader.revision}`, { where: base || '/', hint: 'check the path with `gridforge repo ls`' });
  if (top.type !== 'dir') throw new UsageError(`${base} is a ${top.type}, not a directory`, { where: base, hint: 'checkout materialises a directory; print a file with `gridforge repo cat`' });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = makeTempDirBeside(target);
  const forget = removeOnInterrupt(tmp);
  const res: CheckoutResult = { dest: target, revision: reader.revision, rootHash: reader.rootHash, files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  try {
    const m = new Materialiser(tmp, reader, res, opts.keepSetuid === true);
    for await (const e of reader.walk(base)) await m.add(e, relativeParts(e.path, base));
    m.finishDirs();
    if (fs.existsSync(target)) fs.rmdirSync(target);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    forget();
  }
  return res;
}
