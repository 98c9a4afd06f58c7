/**
 * Walk the final tree once (parents first, deterministic order) and hand each entry to a sink.
 * Hardlinks: the first path of an inode is written as a file, later ones link to it; a hard link
 * to a symlink is written as a second symlink with the same target in every sink (CernVM-FS
 * links only regular files, and a copy of a symlink reads the same). Device nodes are never
 * written into sandboxes (counted in the result). Extended attributes (security.capability among
 * them, binary values kept) go to sinks that carry them (`carriesXattrs`: the directory sink as
 * root, the repository sink), as Docker applies them when it extracts a layer; other sinks drop
 * them (counted: an unprivileged writer cannot set security.*, like apptainer's unprivileged unpack).
 * Setuid/setgid bits of non-directories are dropped unless `keepSetuid`: a sandbox lies on the
 * host where any local user can run its files, and a setuid-root binary from an untrusted image
 * would run with euid 0 (unprivileged runtimes ignore these bits anyway: nosuid mounts).
 */
import { walk, type Inode, type Node } from '../layer/tree.ts';
import type { SandboxSink, SinkMeta } from './sink.ts';

export interface WriteStats {
  dirs: number;
  files: number;
  symlinks: number;
  hardlinks: number;
  fifos: number;
  skippedDevices: number;
  /** Extended attributes written (entries x names). */
  xattrs: number;
  /** Extended attributes dropped because the sink cannot write them (not root). */
  skippedXattrs: number;
  /** Files whose setuid/setgid bits were dropped. */
  strippedSetid: number;
  bytes: number;
}

export interface WriteOptions {
  /** Keep setuid/setgid bits (default: dropped from everything but directories). */
  keepSetuid?: boolean;
  onProgress?: (s: WriteStats) => void;
}

const SETID = 0o6000;
/** Entries between turns of the event loop, so SIGINT/SIGTERM cleanup (base/cleanup.ts) can run. */
const YIELD_EVERY = 256;

function metaOf(ino: Inode, opts: WriteOptions, s: WriteStats, carriesXattrs: boolean): SinkMeta {
  let mode = ino.mode;
  if (!opts.keepSetuid && ino.type !== 'dir' && (mode & SETID)) {
    mode &= ~SETID;
    s.strippedSetid++;
  }
  const meta: SinkMeta = { mode, uid: ino.uid, gid: ino.gid, mtime: ino.mtime };
  if (ino.xattrs.size) {
    if (carriesXattrs) {
      meta.xattrs = ino.xattrs;
      s.xattrs += ino.xattrs.size;
    } else {
      s.skippedXattrs += ino.xattrs.size;
    }
  }
  return meta;
}

export async function writeTree(root: Node, sink: SandboxSink, opts: WriteOptions = {}): Promise<WriteStats> {
  const s: WriteStats = { dirs: 0, files: 0, symlinks: 0, hardlinks: 0, fifos: 0, skippedDevices: 0, xattrs: 0, skippedXattrs: 0, strippedSetid: 0, bytes: 0 };
  const first = new Map<Inode, string>();
  let n = 0;
  for (const { node, path } of walk(root)) {
    if (++n % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
    if (opts.onProgress && n % 5000 === 0) opts.onProgress(s);
    const ino = node.inode;
    if (ino.type === 'char' || ino.type === 'block') {
      s.skippedDevices++;
      continue;
    }
    const meta = metaOf(ino, opts, s, sink.carriesXattrs);
    if (ino.type === 'dir') {
      await sink.dir(path, meta);
      s.dirs++;
      continue;
    }
    const f = first.get(ino);
    if (f !== undefined && ino.type === 'symlink') {
      await sink.symlink(path, ino.linkname, meta);
      s.symlinks++;
      continue;
    }
    if (f !== undefined) {
      await sink.hardlink(path, f, { size: ino.size, file: ino.file, offset: ino.offset, buffer: ino.content }, meta);
      s.hardlinks++;
      continue;
    }
    first.set(ino, path);
    if (ino.type === 'file') {
      await sink.file(path, { size: ino.size, file: ino.file, offset: ino.offset, buffer: ino.content }, meta);
      s.files++;
      s.bytes += ino.size;
    } else if (ino.type === 'symlink') {
      await sink.symlink(path, ino.linkname, meta);
      s.symlinks++;
    } else if (ino.type === 'fifo') {
      await sink.fifo(path, meta);
      s.fifos++;
    }
  }
  return s;
}
