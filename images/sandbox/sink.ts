/**
 * Where a sandbox tree goes. The writer walks the final tree once, parents before children, and
 * calls a sink; `fs-sink.ts` writes a directory, a repository sink writes into a CernVM-FS
 * transaction. Paths are canonical (no symlink in any parent: parents were resolved in the model).
 */
import type { Readable } from 'node:stream';

export interface SinkMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Extended attributes to set (raw values: security.capability is binary); only for sinks with carriesXattrs. */
  xattrs?: ReadonlyMap<string, Buffer>;
}

export interface FileContent {
  size: number;
  /** Contents in a blob at an offset (layer data), or in memory. */
  file?: string;
  offset?: number;
  buffer?: Buffer;
}

export interface SandboxSink {
  /**
   * Whether this sink writes extended attributes (the directory sink as root, the repository
   * sink always); write-tree.ts passes `meta.xattrs` only then and counts them as dropped otherwise.
   */
  readonly carriesXattrs: boolean;
  dir(path: string, meta: SinkMeta): Promise<void> | void;
  file(path: string, content: FileContent, meta: SinkMeta): Promise<void> | void;
  symlink(path: string, target: string, meta: SinkMeta): Promise<void> | void;
  /**
   * `target` was written earlier by file(). Content and meta are passed along for sinks that
   * cannot link across directories (CernVM-FS) and copy instead.
   */
  hardlink(path: string, target: string, content: FileContent, meta: SinkMeta): Promise<void> | void;
  fifo(path: string, meta: SinkMeta): Promise<void> | void;
  /** Everything written: apply deferred attributes, publish atomically. */
  finish(): Promise<void>;
  /** Failure: remove everything written. */
  abort(): Promise<void>;
}

export type { Readable };
