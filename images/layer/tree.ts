/**
 * The in-memory image tree that layers are applied to. A Node is a directory entry; an Inode holds
 * what the entry is (type, attributes, where its data lives). Hardlinks are Nodes sharing an Inode,
 * so replacing one side of a hardlink (unlink + recreate) leaves the other side intact, exactly as
 * on a filesystem. Only metadata is held: file contents stay in the layer blobs, addressed by offset.
 */
import type { FileMeta } from '../../base/file-meta.ts';
import type { EntryType } from '../archive/tar-format.ts';

export interface Inode extends FileMeta {
  type: EntryType;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
  /** Where a regular file's contents are: file + offset of the data (size bytes). */
  file?: string;
  offset?: number;
  /** In-memory contents (files gridforge adds itself, e.g. sandbox scripts). */
  content?: Buffer;
}

export interface Node {
  name: string;
  parent: Node | null;
  inode: Inode;
  children: Map<string, Node> | null;
  /** Newest layer that created or touched this entry (opaque directories hide older ones). */
  layer: number;
}

export function newRoot(): Node {
  return {
    name: '',
    parent: null,
    inode: { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() },
    children: new Map(),
    layer: -1,
  };
}

export function pathOf(n: Node): string {
  const parts: string[] = [];
  for (let c: Node | null = n; c && c.parent; c = c.parent) parts.push(c.name);
  return parts.reverse().join('/');
}

export interface Visit {
  node: Node;
  /** Path relative to the root, no leading slash; '' for the root. */
  path: string;
}

/** Depth-first, children sorted by name: the deterministic order of every output. */
export function* walk(root: Node): Generator<Visit> {
  const stack: Visit[] = [{ node: root, path: '' }];
  while (stack.length) {
    const v = stack.pop()!;
    yield v;
    if (v.node.children) {
      const names = [...v.node.children.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
      for (const name of names) stack.push({ node: v.node.children.get(name)!, path: v.path ? `${v.path}/${name}` : name });
    }
  }
}

export function countEntries(root: Node): { entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  const seen = new Set<Inode>();
  for (const { node } of walk(root)) {
    entries++;
    if (node.inode.type === 'file' && !seen.has(node.inode)) {
      seen.add(node.inode);
      bytes += node.inode.size;
    }
  }
  return { entries, bytes };
}
