/**
 * Which revision of the repository the worker nodes see. A checkout-mode testbed checks the tagged
 * revision out beside the current one and re-binds /cvmfs/<repo> on every worker node (what a stock
 * client does by itself when the revision is published); the stock client mode reloads the mount.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { GridforgeError } from '../base/errors.ts';
import { hostExec, hostRun } from './nshost.ts';
import { checkoutRevision, mountCheckout, repoInfo } from './repo-mount.ts';
import { saveState, type TestbedState } from './state.ts';

export async function switchRevision(state: TestbedState, tag: string): Promise<void> {
  const repo = state.repo!;
  const workers = state.hosts.filter((h) => h.role === 'worker');
  if (repo.mode === 'cvmfs2') {
    for (const w of workers) await hostRun(w, `cvmfs_talk -p /run/cvmfs/${repo.name}/cvmfs_io.${repo.name} remount sync || true`);
    repo.tag = tag;
    saveState(state);
    return;
  }
  const dest = join(state.dir, 'checkout', `${repo.name}@${tag}-${Date.now().toString(36)}`);
  await checkoutRevision(repo.url!, repoInfo(repo.dir), dest, tag).catch((err: Error) => {
    throw new GridforgeError(`testbed: cannot check out tag ${tag} of ${repo.name}: ${err.message}`, { hint: `list the tags with: gridforge repo tags ${repo.dir}` });
  });
  for (const w of workers) {
    await hostExec(w, `umount -l /cvmfs/${repo.name} 2>/dev/null; true`);
    await mountCheckout(w, dest, repo.name);
  }
  const old = repo.checkout;
  repo.checkout = dest;
  repo.tag = tag;
  saveState(state);
  if (old && old !== dest) rmSync(old, { recursive: true, force: true });
}
