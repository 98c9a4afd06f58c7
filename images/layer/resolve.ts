/**
 * Step 2: resolve an entry's parent directory inside the root. Every component is looked up in
 * the tree (the lstat of a real extractor); a symlink in a parent is followed with absolute targets
 * taken as root-relative, a relative target that climbs above the root is refused; the final
 * component is never followed. Missing parents are created as 0755 root directories (containerd).
 */
import { UsageError } from '../../base/errors.ts';
import type { Node } from './tree.ts';

const MAX_SYMLINKS = 40;

export function mkdirNode(parent: Node, name: string, layer: number): Node {
  const n: Node = {
    name,
    parent,
    inode: { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() },
    children: new Map(),
    layer,
  };
  parent.children!.set(name, n);
  return n;
}

/**
 * Walk `comps` from the root, following symlinks. `create` makes missing directories (entries);
 * without it a missing component yields null (whiteouts, hardlink targets).
 */
export function resolveDir(root: Node, comps: string[], where: string, layer: number, create: boolean): Node | null {
  let hops = 0;
  const walkFrom = (start: Node, parts: string[], fromSymlink: boolean): Node | null => {
    let cur = start;
    for (const comp of parts) {
      if (comp === '' || comp === '.') continue;
      if (comp === '..') {
        if (cur.parent) cur = cur.parent;
        else if (fromSymlink === true) throw new UsageError('a symlinked parent points outside the image root', { where, hint: 'The layer tries to write outside the image root; do not use it.' });
        continue;
      }
      let child = cur.children!.get(comp);
      if (!child) {
        if (!create) return null;
        child = mkdirNode(cur, comp, layer);
      }
      if (child.inode.type === 'symlink') {
        if (++hops > MAX_SYMLINKS) throw new UsageError('too many levels of symbolic links in a parent path', { where, hint: 'The layer has a symlink loop.' });
        const target = child.inode.linkname;
        const abs = target.startsWith('/');
        const next = walkFrom(abs ? root : cur, target.split('/'), !abs);
        if (!next) return null;
        child = next;
      }
      if (child.inode.type !== 'dir') {
        if (!create) return null;
        throw new UsageError(`parent component ${JSON.stringify(comp)} is not a directory`, { where, hint: 'The layer is inconsistent with the layers below it.' });
      }
      if (create) child.layer = Math.max(child.layer, layer);
      cur = child;
    }
    return cur;
  };
  return walkFrom(root, comps, false);
}
