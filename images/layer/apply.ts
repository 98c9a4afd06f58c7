/**
 * Step 3: apply one layer's entries to the tree, oldest layer first (OCI layer rules):
 * directory on directory replaces attributes only; anything else unlinks and recreates;
 * whiteouts and opaque directories; hardlinks share the target's inode (targets resolved inside
 * the root, absolute linknames root-relative; a missing target is refused or written as an empty
 * file, hardlink-policy.ts); symlink targets kept verbatim; the root never changes type. Limits on
 * entry count are checked as entries arrive.
 */
import { UsageError } from '../../base/errors.ts';
import type { ScannedLayer, LayerEntry } from '../archive/layer-scan.ts';
import { DEFAULT_MAX_ENTRIES } from '../archive/limits.ts';
import { entryComponents, linkComponents } from './entry-path.ts';
import { missingTargetError, missingTargetWarning, type MissingHardlinkTarget } from './hardlink-policy.ts';
import { resolveDir } from './resolve.ts';
import type { Inode, Node } from './tree.ts';
import { applyOpaque, isWhiteout, OPAQUE, whiteoutTarget } from './whiteout.ts';

export interface ApplyLimits {
  maxEntries: number;
}

export const DEFAULT_LIMITS: ApplyLimits = { maxEntries: DEFAULT_MAX_ENTRIES };

export interface ApplyPolicy {
  /** Hard links whose target is missing (hardlink-policy.ts); default `refuse`. */
  missingHardlinkTarget?: MissingHardlinkTarget;
  /** Called once per entry the `empty` policy wrote as an empty file. */
  onWarning?: (message: string) => void;
}

function inodeOf(e: LayerEntry): Inode {
  const h = e.header;
  return {
    type: h.type,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime,
    size: h.type === 'file' ? h.size : 0,
    linkname: h.type === 'symlink' ? h.linkname : '',
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs: h.xattrs,
    file: h.type === 'file' ? e.file : undefined,
    offset: h.type === 'file' ? e.offset : undefined,
  };
}

export class LayerApplier {
  private count = 0;
  constructor(private readonly root: Node, private readonly limits: ApplyLimits = DEFAULT_LIMITS, private readonly policy: ApplyPolicy = {}) {}

  applyLayer(layer: ScannedLayer, index: number): void {
    for (const e of layer.entries) this.applyEntry(e, index, `${layer.blob.label}: ${e.header.path}`);
  }

  applyEntry(e: LayerEntry, layer: number, where: string): void {
    if (++this.count > this.limits.maxEntries) throw new UsageError(`more than ${this.limits.maxEntries} entries`, { where, hint: 'The image exceeds the entry limit; it may be a decompression bomb.' });
    const h = e.header;
    const comps = entryComponents(h.path, where);
    if (comps.length === 0) {
      if (h.type !== 'dir') throw new UsageError(`entry would turn the image root into a ${h.type}`, { where, hint: 'The layer is malicious or corrupted; do not use it.' });
      Object.assign(this.root.inode, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs: h.xattrs });
      return;
    }
    const base = comps[comps.length - 1];
    if (isWhiteout(base)) {
      const parent = resolveDir(this.root, comps.slice(0, -1), where, layer, false);
      if (!parent) return; // nothing below to hide
      if (base === OPAQUE) {
        parent.layer = Math.max(parent.layer, layer);
        applyOpaque(parent, layer);
        return;
      }
      const name = whiteoutTarget(base, where);
      if (name !== null) parent.children!.delete(name);
      return;
    }
    const parent = resolveDir(this.root, comps.slice(0, -1), where, layer, true)!;
    const existing = parent.children!.get(base);
    if (h.type === 'hardlink') {
      const lc = linkComponents(h.linkname, where);
      const tdir = resolveDir(this.root, lc.slice(0, -1), where, layer, false);
      const target = tdir?.children!.get(lc[lc.length - 1]);
      if (!target) {
        if (this.policy.missingHardlinkTarget !== 'empty') throw missingTargetError(h.linkname, where);
        // an empty regular file with the entry's own metadata (cvmfs's ingest does the same)
        this.policy.onWarning?.(missingTargetWarning(h.linkname, where));
        const empty: Inode = { ...inodeOf(e), type: 'file', size: 0, linkname: '', devmajor: 0, devminor: 0, file: undefined, offset: undefined, content: Buffer.alloc(0) };
        parent.children!.set(base, { name: base, parent, inode: empty, children: null, layer });
        return;
      }
      if (target.inode.type === 'dir') throw new UsageError(`hardlink to directory ${JSON.stringify(h.linkname)} refused`, { where, hint: 'The layer is malformed.' });
      // Like containerd and docker: link, then chown/chmod/chtimes the new name, which changes the
      // shared inode (docker-produced layers repeat the target's attributes here anyway).
      const ino = target.inode;
      ino.uid = h.uid;
      ino.gid = h.gid;
      ino.mode = h.mode;
      ino.mtime = h.mtime;
      if (h.xattrs.size) ino.xattrs = h.xattrs;
      if (target === existing) return;
      parent.children!.set(base, { name: base, parent, inode: ino, children: null, layer });
      return;
    }
    if (h.type === 'dir' && existing && existing.inode.type === 'dir') {
      const ino = existing.inode;
      ino.mode = h.mode;
      ino.uid = h.uid;
      ino.gid = h.gid;
      ino.mtime = h.mtime;
      ino.xattrs = h.xattrs;
      existing.layer = layer;
      return;
    }
    parent.children!.set(base, { name: base, parent, inode: inodeOf(e), children: h.type === 'dir' ? new Map() : null, layer });
  }
}

export function applyLayers(root: Node, layers: ScannedLayer[], limits?: ApplyLimits, policy?: ApplyPolicy): Node {
  const a = new LayerApplier(root, limits, policy);
  layers.forEach((l, i) => a.applyLayer(l, i));
  return root;
}
