/**
 * `gridforge image sync <wishlist.yaml> --repo <repo-dir> [--dry-run]`: registry images named by a
 * wish list (wishlist.ts) become digest-addressed sandboxes with tag links in a CernVM-FS
 * repository (plan.ts, apply.ts; state in the repository, state.ts).
 */
import fs from 'node:fs';
import { UsageError } from '../../base/errors.ts';
import type { Progress } from '../../base/progress.ts';
import { openRepository } from '../../cvmfs-publish/index.ts';
import type { MissingHardlinkTarget } from '../../images/layer/hardlink-policy.ts';
import { applyPlan } from './apply.ts';
import { planSync, type Plan } from './plan.ts';
import { loadWishList, parseDuration } from './wishlist.ts';

export type { Plan };

export interface SyncOptions {
  wishList: string;
  repo: string;
  dryRun?: boolean;
  /** Overrides the wish list's grace period (e.g. '0', '36h'). */
  grace?: string;
  tmpDir?: string;
  onProgress?: Progress;
  /** Overrides the wish list's `missingHardlinkTarget` for every image (`--missing-hardlink-target`). */
  missingHardlinkTarget?: MissingHardlinkTarget;
  /** Each warning of the `empty` policy as it happens (also in the result). */
  onWarning?: (message: string) => void;
  /** For tests: the time now (ms). */
  now?: number;
}

export interface SyncResult {
  dryRun: boolean;
  plan: Plan;
  written: number;
  revision?: number;
  /** Entries written as empty files under the `empty` policy, one line each. */
  warnings: string[];
}

export async function syncImages(opts: SyncOptions): Promise<SyncResult> {
  const list = loadWishList(opts.wishList);
  const graceMs = opts.grace === undefined ? undefined : parseDuration(opts.grace, '--grace');
  if (!fs.existsSync(opts.repo)) throw new UsageError('no such repository directory', { where: opts.repo, hint: 'Create it with gridforge repo init.' });
  const reader = await openRepository(opts.repo);
  const plan = await planSync(list, reader, { now: opts.now, graceMs, onProgress: opts.onProgress });
  if (opts.dryRun) return { dryRun: true, plan, written: 0, warnings: [] };
  const r = await applyPlan(plan, opts.repo, { tmpDir: opts.tmpDir, onProgress: opts.onProgress, message: `image sync ${opts.wishList}`, missingHardlinkTarget: opts.missingHardlinkTarget, onWarning: opts.onWarning });
  return { dryRun: false, plan, ...r };
}
