/**
 * Which revision of the repository the worker nodes see. A checkout-mode testbed checks the tagged
 * revision out beside the current one and re-binds /cvmfs/<repo> on every worker node (what a stock
 * client does by itself when the revision is published); the stock client mode reloads the mount.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { GridforgeError } from '../base/errors.ts';
import { hostExec, hostRun } from './nshost.ts';
import { checkoutRevision, findCvmfs2, mountCheckout, mountCvmfs2, repoInfo } from './repo-mount.ts';
import { saveState, type TestbedState } from './state.ts';

export async function switchRevision(state: TestbedState, tag: string): Promise<void> {
  const repo = state.repo!;
  const workers = state.hosts.filter((h) => h.role === 'worker');
  if (repo.mode === 'cvmfs2') {
    const cvmfs2 = findCvmfs2();
    if (!cvmfs2) throw new GridforgeError('testbed: the stock cvmfs client it was brought up with is gone', { hint: 'set GRIDFORGE_CVMFS_BIN as for testbed up, or testbed down and up again' });
    for (const w of workers) {
      await hostRun(w, `umount /cvmfs/${repo.name} || umount -l /cvmfs/${repo.name}`);
      await mountCvmfs2(w, cvmfs2, repo.url!, repoInfo(repo.dir), join(state.dir, w.name), tag);
    }
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
