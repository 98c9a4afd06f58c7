/**
 * Extended attributes onto a written tree. Node has no setxattr(2), so every attribute of a
 * sandbox is set by ONE `setfattr -h --restore=-` (Debian `attr`) reading a dump in getfattr's
 * format (attr's setfattr.c: `# file: <name with \ooo escapes>`, then `key=0x<hex>` lines, so
 * binary values such as security.capability pass unchanged). It runs after every chown: the kernel
 * clears security.capability when a file's owner changes (see capabilities(7), "File capability
 * extended attribute versioning" and chown(2)).
 */
import { spawnSync } from 'node:child_process';
import { GridforgeError, UsageError } from '../../base/errors.ts';

/** Attribute names setfattr's dump format can carry unambiguously (namespace.name). */
const KEY_RE = /^(security|trusted|user|system)\.[A-Za-z0-9._@+-]+$/;

export interface XattrTarget {
  /** Path relative to the tree root ('' = the root). */
  path: string;
  xattrs: ReadonlyMap<string, Buffer>;
}

/** getfattr-style name: bytes outside a plain set become `\ooo` (octal), as setfattr unescapes. */
function escapeName(p: string): string {
  const b = Buffer.from(p === '' ? '.' : p, 'utf8');
  let out = '';
  for (const c of b) {
    out += (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2e || c === 0x2f || c === 0x5f || c === 0x2d
      ? String.fromCharCode(c)
      : `\\${c.toString(8).padStart(3, '0')}`;
  }
  return out;
}

/** Refuse names the dump cannot carry (before anything is written). */
export function checkXattrKeys(p: string, xattrs: ReadonlyMap<string, Buffer>): void {
  for (const k of xattrs.keys()) {
    if (!KEY_RE.test(k)) {
      throw new UsageError(`extended attribute name ${JSON.stringify(k)} cannot be written into a sandbox`, { where: `/${p}`, hint: 'Remove the attribute from the image (its layer tar carries it as SCHILY.xattr.<name>).' });
    }
  }
}

export function restoreDump(targets: XattrTarget[]): string {
  const lines: string[] = [];
  for (const t of targets) {
    lines.push(`# file: ${escapeName(t.path)}`);
    for (const [k, v] of [...t.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) lines.push(`${k}=0x${v.toString('hex')}`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/** Set every attribute below `root` in one setfattr run; symlinks themselves, never their targets (-h). */
export function applyXattrs(root: string, targets: XattrTarget[]): void {
  if (targets.length === 0) return;
  const r = spawnSync('setfattr', ['-h', '--restore=-'], { cwd: root, input: restoreDump(targets), encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new GridforgeError(`cannot run setfattr to write ${targets.length} entries' extended attributes: ${r.error.message}`, { where: root, hint: missing ? 'Install the attr package (apt-get install attr).' : 'Check the sandbox filesystem.' });
  }
  if (r.status !== 0) {
    throw new GridforgeError(`setfattr failed writing extended attributes: ${r.stderr.trim().split('\n').slice(0, 3).join('; ')}`, { where: root, hint: 'The sandbox filesystem must support the attributes (security.* needs root and a filesystem with xattrs, e.g. ext4, xfs, tmpfs).' });
  }
}
