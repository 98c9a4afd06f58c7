/** The in-memory directory entry a transaction edits and a catalog row is made from. */
import type { FileMeta } from '../base/file-meta.ts';
import type { Counters } from './format.ts';
import type { Xattrs } from './xattr.ts';
import type { ChunkRef } from './chunk-params.ts';

export type EntryType = 'dir' | 'file' | 'symlink' | 'special';

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  /** seconds since the epoch */
  mtime: number;
  xattrs?: Xattrs;
}

export interface CatalogRef {
  hash: string;
  /** uncompressed size */
  size: number;
  revision: number;
  /** self + subtree counters of that catalog */
  total?: Counters;
}

export interface Entry extends FileMeta {
  name: string;
  type: EntryType;
  /** content object hash (files; unset for a chunked file) */
  hash?: string;
  /** a chunked file's chunks in offset order (P objects; catalog `chunks` table, flag 64) */
  chunks?: ChunkRef[];
  /** pending content (files whose object is still being written) */
  pending?: Promise<{ hash: string; size: number; chunks?: ChunkRef[] }>;
  target?: string;
  xattrs?: Xattrs;
  /** hardlink group within the directory (0 = none) */
  hlGroup?: number;
  children?: Map<string, Entry>;
  /** this directory is the root of a nested catalog */
  nested?: boolean;
  /** the catalog this directory roots, as last published (reused when nothing below changed) */
  catalog?: CatalogRef;
  /** directory link count as read from a catalog (kept for mountpoints whose catalog is not opened) */
  links?: number;
  /** children not read yet (nested catalog not opened) */
  unloaded?: boolean;
  /** something in this directory's catalog changed */
  dirty?: boolean;
}

export function newDir(name: string, meta: Meta): Entry {
  return { name, type: 'dir', mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime, size: 4096, xattrs: meta.xattrs, children: new Map() };
}
