/**
 * The single flattened layer: a deterministic tar of the final tree (depth-first, children sorted
 * by name, attributes and mtimes from the image, fixed PAX header names), with file contents read
 * straight from the source blobs by offset. Its exact size is computed up front so it can be
 * streamed into an outer archive header without buffering.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { encodeHeader, END_OF_ARCHIVE, padded, type TarHeader } from '../archive/tar-format.ts';
import { walk, type Inode, type Node } from '../layer/tree.ts';

interface Item {
  header: TarHeader;
  inode: Inode | null; // set when data follows
}

function* items(root: Node): Generator<Item> {
  const firstPath = new Map<Inode, string>();
  for (const { node, path } of walk(root)) {
    if (path === '') continue;
    const ino = node.inode;
    const base = { path: ino.type === 'dir' ? `${path}/` : path, mode: ino.mode, uid: ino.uid, gid: ino.gid, mtime: ino.mtime, devmajor: ino.devmajor, devminor: ino.devminor, xattrs: ino.xattrs };
    if (ino.type !== 'dir') {
      const first = firstPath.get(ino);
      if (first !== undefined) {
        yield { header: { ...base, type: 'hardlink', size: 0, linkname: first }, inode: null };
        continue;
      }
      firstPath.set(ino, path);
    }
    yield { header: { ...base, type: ino.type, size: ino.type === 'file' ? ino.size : 0, linkname: ino.linkname }, inode: ino.type === 'file' ? ino : null };
  }
}

export function layerTarSize(root: Node): number {
  let total = 0;
  for (const it of items(root)) total += encodeHeader(it.header).length + (it.inode ? padded(it.inode.size) : 0);
  return total + END_OF_ARCHIVE.length;
}

const CHUNK = 1 << 20;

/** Open descriptors kept at most: a source may be thousands of files (the engine's layer store). */
const MAX_OPEN = 64;

/**
 * File descriptors of the source files (blobs, spool files, or one file per entry when read from
 * the engine's layer store), reused while they are hot. Opened with O_NOFOLLOW and O_NONBLOCK: a
 * source is a regular file, never reached through a final symlink, never a FIFO that would block.
 */
export class BlobReader {
  private fds = new Map<string, number>();
  fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      if (this.fds.size >= MAX_OPEN) this.close();
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      this.fds.set(file, fd);
    }
    return fd;
  }
  /** Read exactly n bytes at offset into buf[pos..]. */
  readInto(file: string, offset: number, buf: Buffer, pos: number, n: number): void {
    const fd = this.fd(file);
    let done = 0;
    while (done < n) {
      const r = fs.readSync(fd, buf, pos + done, n - done, offset + done);
      if (r === 0) throw new Error(`short read in ${file} at ${offset + done}`);
      done += r;
    }
  }
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

/**
 * Stream the layer tar as chunks of up to 1 MiB, hashing as it goes. `hash` receives every byte.
 * Each yielded Buffer is fresh (consumers may hold on to it) unless `reuseBuffer` is set, for
 * synchronous consumers: then one buffer is reused and memory stays flat.
 */
export function* layerTarChunks(root: Node, hash: crypto.Hash, opts: { reuseBuffer?: boolean } = {}): Generator<Buffer> {
  const reader = new BlobReader();
  let buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  const flush = function* (): Generator<Buffer> {
    if (pos === 0) return;
    const out = buf.subarray(0, pos);
    hash.update(out);
    yield out;
    if (!opts.reuseBuffer) buf = Buffer.allocUnsafe(CHUNK);
    pos = 0;
  };
  const put = function* (b: Buffer): Generator<Buffer> {
    let i = 0;
    while (i < b.length) {
      const k = Math.min(b.length - i, CHUNK - pos);
      b.copy(buf, pos, i, i + k);
      pos += k;
      i += k;
      if (pos === CHUNK) yield* flush();
    }
  };
  try {
    for (const it of items(root)) {
      yield* put(encodeHeader(it.header));
      if (!it.inode) continue;
      const ino = it.inode;
      let left = ino.size;
      let off = ino.offset!;
      while (left > 0) {
        const k = Math.min(left, CHUNK - pos);
        reader.readInto(ino.file!, off, buf, pos, k);
        pos += k;
        off += k;
        left -= k;
        if (pos === CHUNK) yield* flush();
      }
      const pad = padded(ino.size) - ino.size;
      if (pad) yield* put(Buffer.alloc(pad));
    }
    yield* put(END_OF_ARCHIVE);
    yield* flush();
  } finally {
    reader.close();
  }
}
