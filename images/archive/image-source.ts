/** What every image reader produces: the config and the layer blobs in order (oldest first). */
import crypto from 'node:crypto';
import type { Prescan } from './layer-scan.ts';

export interface LayerBlob {
  /** How the layer is named in error messages, e.g. `layer 3 (blobs/sha256/ab12...)`. */
  label: string;
  file: string;
  offset: number;
  size: number;
  /** Expected `sha256:<hex>` of the uncompressed stream (config rootfs.diff_ids). */
  diffId: string;
  /** Set when the layer was already hashed and scanned while streaming in (engine saves). */
  prescan?: Prescan;
  /**
   * Expected `sha256:<hex>` of the blob bytes as stored (compressed or not), when the blob is named
   * by its digest (OCI descriptors, `blobs/sha256/<hex>`): checked while the layer is scanned.
   */
  digest?: string;
  /** The file as the reader found it (OCI layout blobs): a file swapped in later is refused. */
  expect?: { dev: number; ino: number; size: number };
}

export interface ImageSource {
  /** What the user passed (ref, archive path or OCI dir). */
  source: string;
  kind: 'engine' | 'docker-archive' | 'oci-layout';
  config: ImageConfig;
  configBytes: Buffer;
  /** sha256 of the config bytes: the image ID. */
  configDigest: string;
  repoTags: string[];
  layers: LayerBlob[];
  /**
   * Set when layer DiffIDs are checked in the background (engine layer store): rejects with the
   * mismatch. Outputs must await it before their result becomes visible.
   */
  verified?: Promise<void>;
  /** Remove spool files (engine streams); safe to call twice. */
  close(): Promise<void>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
  [k: string]: unknown;
}

export function sha256(buf: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(buf).digest('hex')}`;
}
