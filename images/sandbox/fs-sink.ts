/**
 * Sandbox directory sink: builds the tree in a random, exclusive temporary sibling of the output
 * (base/safe-fs.ts makeTempDirBeside) and renames it into place at the end; a failed or refused
 * image, or SIGINT/SIGTERM (base/cleanup.ts), leaves nothing. Files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, contents copied from the layer blobs by offset; chown before chmod so
 * the modes the writer passes stay (write-tree.ts drops setuid/setgid unless asked to keep them);
 * directory modes and mtimes are applied last, deepest first. Everything is
 * made owner-writable (apptainer --fix-perms) so the sandbox can be deleted. As a non-root user
 * ownership and extended attributes are not preserved (as apptainer's rootless mode does); as root
 * extended attributes are set last, after every chown (xattr-restore.ts).
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { makeTempDirBeside } from '../../base/safe-fs.ts';
import { BlobReader } from '../flatten/layer-tar.ts';
import { replaceDir } from '../flatten/index.ts';
import type { FileContent, SandboxSink, SinkMeta } from './sink.ts';
import { applyXattrs, checkXattrKeys, type XattrTarget } from './xattr-restore.ts';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const CHUNK = 1 << 20;

export function fixFileMode(mode: number): number {
  return (mode & 0o7777) | 0o600;
}
export function fixDirMode(mode: number): number {
  return (mode & 0o7777) | 0o700;
}

export class FsSink implements SandboxSink {
  readonly tmp: string;
  private readonly asRoot = process.getuid?.() === 0;
  readonly carriesXattrs = this.asRoot;
  private readonly xattrs: XattrTarget[] = [];
  private readonly dirs: { p: string; meta: SinkMeta }[] = [];
  private readonly reader = new BlobReader();
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private readonly forget: () => void;

  constructor(readonly output: string) {
    this.tmp = makeTempDirBeside(output);
    this.forget = removeOnInterrupt(this.tmp);
  }

  private abs(p: string): string {
    return p === '' ? this.tmp : `${this.tmp}/${p}`;
  }

  /** Remember an entry's attributes for finish() (a hard link shares its inode's). */
  private keepXattrs(p: string, meta: SinkMeta): void {
    if (!meta.xattrs?.size) return;
    checkXattrKeys(p, meta.xattrs);
    this.xattrs.push({ path: p, xattrs: meta.xattrs });
  }

  dir(p: string, meta: SinkMeta): void {
    if (p !== '') fs.mkdirSync(this.abs(p), { mode: 0o700 });
    this.dirs.push({ p, meta });
    this.keepXattrs(p, meta);
  }

  file(p: string, content: FileContent, meta: SinkMeta): void {
    this.keepXattrs(p, meta);
    const fd = fs.openSync(this.abs(p), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      if (content.buffer) {
        fs.writeSync(fd, content.buffer);
      } else if (content.size > 0) {
        let left = content.size;
        let off = content.offset!;
        while (left > 0) {
          const k = Math.min(left, CHUNK);
          this.reader.readInto(content.file!, off, this.buf, 0, k);
          let w = 0;
          while (w < k) w += fs.writeSync(fd, this.buf, w, k - w);
          left -= k;
          off += k;
        }
      }
      if (this.asRoot) fs.fchownSync(fd, meta.uid, meta.gid);
      fs.fchmodSync(fd, fixFileMode(meta.mode));
      fs.futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  symlink(p: string, target: string, meta: SinkMeta): void {
    const a = this.abs(p);
    fs.symlinkSync(target, a);
    this.keepXattrs(p, meta);
    if (this.asRoot) fs.lchownSync(a, meta.uid, meta.gid);
    fs.lutimesSync(a, meta.mtime, meta.mtime);
  }

  hardlink(p: string, target: string): void { // content/meta unused: a real link
    fs.linkSync(this.abs(target), this.abs(p));
  }

  fifo(p: string, meta: SinkMeta): void {
    // Node has no mkfifo(2); FIFOs are rare in images, one mkfifo(1) each (a later hardlink may need it)
    const a = this.abs(p);
    execFileSync('mkfifo', ['-m', '600', '--', a]);
    this.keepXattrs(p, meta);
    if (this.asRoot) fs.lchownSync(a, meta.uid, meta.gid);
    fs.chmodSync(a, fixFileMode(meta.mode));
    fs.utimesSync(a, meta.mtime, meta.mtime);
  }

  async finish(): Promise<void> {
    this.reader.close();
    // directories last, deepest first: chown, chmod, then mtime
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const { p, meta } = this.dirs[i];
      const a = this.abs(p);
      if (this.asRoot) fs.lchownSync(a, meta.uid, meta.gid);
      fs.chmodSync(a, fixDirMode(meta.mode));
      fs.utimesSync(a, meta.mtime, meta.mtime);
    }
    applyXattrs(this.tmp, this.xattrs); // after every chown, which clears security.capability
    replaceDir(this.tmp, this.output);
    this.forget();
  }

  async abort(): Promise<void> {
    this.reader.close();
    fs.rmSync(this.tmp, { recursive: true, force: true });
    this.forget();
  }
}
