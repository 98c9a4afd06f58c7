/**
 * Walk the final tree once (parents first, deterministic order) and hand each entry to a sink.
 * Hardlinks: the first path of an inode is written as a file, later ones link to it. Device nodes
 * are never written into sandboxes; xattrs are not carried into sandboxes (apptainer's unprivileged
 * unpack cannot set security.* either); both are counted in the result.
 */
import { walk, type Inode, type Node } from '../layer/tree.ts';
import type { SandboxSink } from './sink.ts';

export interface WriteStats {
  dirs: number;
  files: number;
  symlinks: number;
  hardlinks: number;
  fifos: number;
  skippedDevices: number;
  skippedXattrs: number;
  bytes: number;
}

export async function writeTree(root: Node, sink: SandboxSink, onProgress?: (s: WriteStats) => void): Promise<WriteStats> {
  const s: WriteStats = { dirs: 0, files: 0, symlinks: 0, hardlinks: 0, fifos: 0, skippedDevices: 0, skippedXattrs: 0, bytes: 0 };
  const first = new Map<Inode, string>();
  let n = 0;
  for (const { node, path } of walk(root)) {
    const ino = node.inode;
    const meta = { mode: ino.mode, uid: ino.uid, gid: ino.gid, mtime: ino.mtime };
    if (ino.xattrs.size) s.skippedXattrs += ino.xattrs.size;
    if (ino.type === 'dir') {
      await sink.dir(path, meta);
      s.dirs++;
      continue;
    }
    if (ino.type === 'char' || ino.type === 'block') {
      s.skippedDevices++;
      continue;
    }
    const f = first.get(ino);
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
    if (onProgress && ++n % 5000 === 0) onProgress(s);
  }
  return s;
}
