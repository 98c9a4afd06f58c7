/**
 * `gridforge image push`: any image source (engine reference, archive, OCI dir, docker://) is
 * flattened into a temporary OCI layout (images/flatten flattenToOci, in `tmpDir`, removed on
 * SIGINT/SIGTERM and at the end), its layer gzipped (compress-layer.ts; `compression: 'none'`
 * keeps it plain) and that single-layer image pushed to a docker:// reference (push.ts). The
 * target is checked before any work.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeOnInterrupt } from '../../base/cleanup.ts';
import { UsageError } from '../../base/errors.ts';
import { noProgress } from '../../base/progress.ts';
import { flattenToOci, type FlattenOptions, type FlattenResult } from '../flatten/index.ts';
import { gzipLayoutLayer } from './compress-layer.ts';
import { pushLayout, type PushResult } from './push.ts';
import { isRegistryRef, parseRegistryRef } from './reference.ts';

export interface PushImageResult extends PushResult {
  flatten: FlattenResult;
  /** How the layer was sent: gzip (default) or as the plain tar. */
  compression: PushCompression;
}

export type PushCompression = 'gzip' | 'none';

export function parsePushCompression(v: string | undefined): PushCompression {
  if (v === undefined || v === 'gzip' || v === 'none') return v ?? 'gzip';
  throw new UsageError(`--compression ${JSON.stringify(v)} is not gzip or none`, { where: '--compression', hint: 'Write --compression gzip (the default) or --compression none.' });
}

export async function pushImage(opts: Omit<FlattenOptions, 'tag' | 'force'> & { target: string; compression?: PushCompression }): Promise<PushImageResult> {
  const compression = parsePushCompression(opts.compression);
  if (!isRegistryRef(opts.target)) throw new UsageError(`the push target ${JSON.stringify(opts.target)} is not a docker:// reference`, { where: opts.target, hint: 'Write docker://<registry>/<repository>:<tag>.' });
  const ref = parseRegistryRef(opts.target);
  if (ref.digest || !/:[^/]*$/.test(opts.target.split('@')[0].slice('docker://'.length))) {
    throw new UsageError('the push target needs an explicit tag (and no digest)', { where: opts.target, hint: 'Write docker://<registry>/<repository>:<tag>.' });
  }
  const parent = opts.tmpDir ?? os.tmpdir();
  const work = fs.mkdtempSync(path.join(parent, 'gridforge-push-'));
  const forget = removeOnInterrupt(work);
  try {
    const layout = path.join(work, 'oci');
    const flatten = await flattenToOci({ ...opts, output: layout, tag: `${ref.registry}/${ref.repository}:${ref.tag}` });
    if (compression === 'gzip') {
      (opts.onProgress ?? noProgress)(`compressing the layer (${(flatten.layerSize / 1048576).toFixed(1)} MiB, gzip)`);
      await gzipLayoutLayer(layout);
    }
    (opts.onProgress ?? noProgress)(`pushing to docker://${ref.display}`);
    const pushed = await pushLayout(layout, ref, opts.onProgress);
    return { ...pushed, flatten, compression };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    forget();
  }
}
