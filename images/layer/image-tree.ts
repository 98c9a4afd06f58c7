/**
 * The whole input side in one call: open the image (engine, archive, OCI dir, or a docker://
 * registry reference pulled by images/registry/), scan every layer
 * (decompress, verify DiffID, parse headers; two layers in flight), then apply them oldest first
 * to an in-memory tree. Both the flattener and the sandbox writer start from this tree; the
 * file contents stay in the source blobs / spool files until an output reads them by offset.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { UsageError } from '../../base/errors.ts';
import { noProgress, type Progress } from '../../base/progress.ts';
import { openImageSource } from '../archive/open.ts';
import { isRegistryRef, openRegistryImage } from '../registry/open.ts';
import type { ImageSource } from '../archive/image-source.ts';
import { scanLayers } from '../archive/layer-scan.ts';
import { applyLayers, type ApplyLimits } from './apply.ts';
import type { MissingHardlinkTarget } from './hardlink-policy.ts';
import { newRoot, type Node } from './tree.ts';

export interface ImageTree {
  src: ImageSource;
  root: Node;
  /** Sum of uncompressed layer sizes. */
  layerBytes: number;
  /** One line per entry a lenient policy let through (e.g. `missingHardlinkTarget: 'empty'`). */
  warnings: string[];
  close(): Promise<void>;
}

export interface ImageTreeOptions {
  /** Where spool files go (engine saves, decompressed layers); default: the OS temp dir. */
  tmpDir?: string;
  limits?: ApplyLimits;
  /** Largest uncompressed layer, in bytes (default: images/archive/limits.ts resolveScanLimits). */
  maxLayerSize?: number;
  /** Progress lines (reading, layers verified, writing); default: none. */
  onProgress?: Progress;
  /**
   * Return before background DiffID checks finish (engine layer store): the caller then awaits
   * `tree.src.verified` itself before its output becomes visible. Default: awaited here.
   */
  deferVerify?: boolean;
  /** docker:// sources: the platform to pick from an index, os/arch[/variant] (default linux/amd64). */
  platform?: string;
  /** Hard links whose target is missing: `refuse` (default) or `empty` (layer/hardlink-policy.ts). */
  missingHardlinkTarget?: MissingHardlinkTarget;
  /** Each warning as it happens (also collected in `ImageTree.warnings`). */
  onWarning?: (message: string) => void;
}

export async function loadImageTree(source: string, opts: ImageTreeOptions = {}): Promise<ImageTree> {
  const say = opts.onProgress ?? noProgress;
  say(`reading ${source}`);
  const src = isRegistryRef(source)
    ? await openRegistryImage(source, { tmpDir: opts.tmpDir, platform: opts.platform, maxLayerSize: opts.maxLayerSize, onProgress: say })
    : await openImageSource(source, { tmpDir: opts.tmpDir, onFallback: (why) => say(`  engine layer store not used (${why}): streaming docker save`) });
  let spoolDir: string;
  try {
    spoolDir = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'gridforge-layers-'));
  } catch (e) {
    await src.close();
    throw new UsageError(`cannot create a spool directory in ${opts.tmpDir ?? os.tmpdir()} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { where: opts.tmpDir ? '--tmp-dir' : 'TMPDIR', hint: 'Pass --tmp-dir <existing writable directory>.' });
  }
  const forget = removeOnInterrupt(spoolDir);
  const close = async () => {
    fs.rmSync(spoolDir, { recursive: true, force: true });
    forget();
    await src.close();
  };
  try {
    const layers = await scanLayers(src.layers, spoolDir, (i, l) => {
      // i is the layer's index in the image's layer list (two are scanned at once: finish order differs)
      say(`  layer ${i + 1}/${src.layers.length} verified (${l.entries.length} entries, ${(l.uncompressedSize / 1048576).toFixed(1)} MiB, ${l.compression})`);
    }, { maxEntries: opts.limits?.maxEntries, maxLayerSize: opts.maxLayerSize });
    const warnings: string[] = [];
    const onWarning = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
    const root = applyLayers(newRoot(), layers, opts.limits, { missingHardlinkTarget: opts.missingHardlinkTarget, onWarning });
    if (src.verified && !opts.deferVerify) await src.verified;
    return { src, root, layerBytes: layers.reduce((s, l) => s + l.uncompressedSize, 0), warnings, close };
  } catch (e) {
    await close();
    throw e;
  }
}
