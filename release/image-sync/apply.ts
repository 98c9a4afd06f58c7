/**
 * Carry out a sync plan: each new tree is a sandbox written by release/sandbox-to-repo.ts from
 * its digest reference (one revision each, so a failure keeps the trees already written and
 * changes no link); ONE revision switches and removes the links, removes expired trees and
 * writes the sync state, so the links a site sees change atomically: the last new tree's revision
 * (one commit less, ~0.2 s), or a revision of its own when no tree is new. Nothing changed: no revision.
 * Each tree is read with its wish-list policy for hard links whose target is missing
 * (`missingHardlinkTarget`, images/layer/hardlink-policy.ts), unless `--missing-hardlink-target`
 * overrides it for the run; the warnings of the `empty` policy are returned, one per entry.
 */
import { UsageError } from '../../base/errors.ts';
import { noProgress, type Progress } from '../../base/progress.ts';
import { openTransaction, type Transaction } from '../../cvmfs-publish/index.ts';
import type { MissingHardlinkTarget } from '../../images/layer/hardlink-policy.ts';
import { DEFAULT_BIND_POINTS } from '../../images/sandbox/index.ts';
import { writeSandboxToRepository } from '../sandbox-to-repo.ts';
import type { Plan } from './plan.ts';

export interface ApplyResult {
  written: number;
  revision?: number;
  /** Entries the `empty` policy wrote as empty files, one line each (naming the tree's source). */
  warnings: string[];
}

export interface ApplyOptions {
  tmpDir?: string;
  onProgress?: Progress;
  message?: string;
  /** Overrides every tree's wish-list policy for hard links whose target is missing. */
  missingHardlinkTarget?: MissingHardlinkTarget;
  onWarning?: (message: string) => void;
}

/** Links switched and removed, expired trees removed, the sync state written: all in `tx`. */
async function linksAndState(tx: Transaction, plan: Plan): Promise<void> {
  for (const l of plan.unlink) await tx.remove(l.path);
  for (const r of plan.remove) await tx.remove(r.path);
  for (const l of plan.link) await tx.symlink(l.path, l.target, { uid: 0, gid: 0, mtime: Math.floor(Date.now() / 1000) });
  await tx.putFile(plan.statePath, Buffer.from(`${JSON.stringify(plan.state, null, 1)}\n`), { mode: 0o644, uid: 0, gid: 0, mtime: Math.floor(Date.now() / 1000) });
}

export async function applyPlan(plan: Plan, repo: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const say = opts.onProgress ?? noProgress;
  const warnings: string[] = [];
  if (!plan.changed) return { written: 0, warnings };
  let revision: number | undefined;
  for (const [i, t] of plan.write.entries()) {
    say(`writing ${t.path} from ${t.source}`);
    const last = i === plan.write.length - 1;
    const onWarning = (m: string) => { warnings.push(`${t.source}: ${m}`); opts.onWarning?.(`${t.source}: ${m}`); };
    let r;
    try {
      r = await writeSandboxToRepository({ source: t.source, repo, path: t.path, bindPoints: DEFAULT_BIND_POINTS, tmpDir: opts.tmpDir, onProgress: opts.onProgress, message: last ? `${opts.message ?? 'image sync'}: ${t.source} (${t.platform}), links and state` : `image sync: ${t.source} (${t.platform})`, beforeCommit: last ? (tx) => linksAndState(tx, plan) : undefined, missingHardlinkTarget: opts.missingHardlinkTarget ?? t.missingHardlinkTarget, onWarning });
    } catch (e) {
      // bad input in one image: name the image too (the layer and entry alone do not say which)
      if (e instanceof UsageError && !e.where?.startsWith(t.source)) throw new UsageError(e.message, { where: e.where ? `${t.source}: ${e.where}` : t.source, hint: e.hint, detail: e.detail, cause: e });
      throw e;
    }
    revision = r.revision;
  }
  if (plan.write.length) return { written: plan.write.length, revision, warnings };
  const tx = openTransaction(repo, { operation: 'image sync: links and state', onProgress: opts.onProgress });
  try {
    await linksAndState(tx, plan);
    const c = await tx.commit({ message: opts.message ?? 'image sync' });
    revision = c.revision;
  } catch (e) {
    try { await tx.abort(); } catch { /* already closed */ }
    throw e;
  }
  return { written: plan.write.length, revision, warnings };
}
