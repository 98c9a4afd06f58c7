/** One-call publishes built on a transaction: replace a tree, switch a symlink, remove a path. */
import { UsageError } from '../base/errors.ts';
import { checkRepoPath, openTransaction, type CommitResult, type PutTreeResult, type TransactionOptions } from './transaction.ts';

export interface PublishOptions extends TransactionOptions {
  tag?: string;
  message?: string;
}

export async function publishTree(repoDir: string, sourceDir: string, pathInRepo: string, opts: PublishOptions = {}): Promise<CommitResult & { path: string; tree: PutTreeResult }> {
  checkRepoPath(pathInRepo); // bad --path: refused before the lock is taken
  const tx = openTransaction(repoDir, { ...opts, operation: `publish ${pathInRepo}` });
  try {
    const tree = await tx.putTree(pathInRepo, sourceDir);
    const r = await tx.commit({ tag: opts.tag, message: opts.message });
    return { ...r, path: pathInRepo, tree };
  } finally {
    await tx.abort();
  }
}

/** Create or atomically switch a symlink (one new revision). */
export async function link(repoDir: string, pathInRepo: string, target: string, opts: PublishOptions = {}): Promise<CommitResult & { path: string; target: string }> {
  const tx = openTransaction(repoDir, { ...opts, operation: `link ${pathInRepo}` });
  try {
    await tx.symlink(pathInRepo, target);
    const r = await tx.commit({ tag: opts.tag, message: opts.message ?? `link ${pathInRepo} -> ${target}` });
    return { ...r, path: pathInRepo, target };
  } finally {
    await tx.abort();
  }
}

export async function removePath(repoDir: string, pathInRepo: string, opts: PublishOptions = {}): Promise<CommitResult & { path: string }> {
  const tx = openTransaction(repoDir, { ...opts, operation: `rm ${pathInRepo}` });
  try {
    if (!tx.exists(pathInRepo)) throw new UsageError(`${pathInRepo} does not exist in the repository`, { where: pathInRepo, hint: 'check the path with `gridforge repo ls`' });
    await tx.remove(pathInRepo);
    const r = await tx.commit({ tag: opts.tag, message: opts.message ?? `rm ${pathInRepo}` });
    return { ...r, path: pathInRepo };
  } finally {
    await tx.abort();
  }
}
