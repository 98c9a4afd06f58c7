/**
 * Site locks in the record directory (`<dir>/locks/<site>.lock`): a rollout holds one lock per
 * targeted site for as long as its runner lives, so two rollouts over the same sites at once are
 * refused. A lock is created with O_EXCL; one whose owner process is gone (a killed runner) is
 * stale and may be taken over (by `resume`, or by a new rollout).
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GridforgeError } from '../../base/errors.ts';
import { isStale, ownerOfThisProcess, readLockOwner, tryCreateLock, type LockOwner } from '../../base/pid-lock.ts';

/** A site lock's owner: the base lock record (pid, host, started) plus the rollout holding it. */
export type SiteLockOwner = LockOwner & { rolloutId: string };

export function lockDir(recordDir: string): string {
  return resolve(recordDir, 'locks');
}

function lockFile(recordDir: string, site: string): string {
  return join(lockDir(recordDir), `${site.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}

export class SiteLocks {
  private held: string[] = [];
  constructor(private readonly recordDir: string, private readonly rolloutId: string) {}

  /**
   * Take the lock of every site, or none: refuses (GridforgeError, exit 1) when another live
   * rollout holds any of them. Stale locks (dead owner) and our own rollout's locks are taken over.
   */
  acquire(sites: string[]): void {
    mkdirSync(lockDir(this.recordDir), { recursive: true });
    const me: SiteLockOwner = ownerOfThisProcess({ rolloutId: this.rolloutId });
    const conflicts: string[] = [];
    for (const site of sites) {
      const path = lockFile(this.recordDir, site);
      for (let attempt = 0; ; attempt++) {
        if (tryCreateLock(path, me)) {
          this.held.push(path);
          break;
        }
        if (attempt > 2) throw new GridforgeError('cannot take the site lock (it keeps changing hands)', { where: path, hint: 'run the rollout again' });
        const owner = readLockOwner<SiteLockOwner>(path);
        const live = !isStale(owner);
        const ours = owner?.rolloutId === this.rolloutId && !(owner.pid !== process.pid && live);
        if (live && !ours) {
          conflicts.push(`${site} (rollout ${owner!.rolloutId}, pid ${owner!.pid})`);
          break;
        }
        try {
          unlinkSync(path); // stale or ours: take it over
        } catch {
          /* raced with its owner releasing it */
        }
      }
    }
    if (conflicts.length > 0) {
      this.release();
      throw new GridforgeError(`another rollout is running over ${conflicts.length} of these sites: ${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', ...' : ''}`, {
        where: lockDir(this.recordDir),
        hint: 'wait for it to finish, or stop it with `gridforge rollout abort <id>`',
      });
    }
  }

  release(): void {
    for (const path of this.held) {
      const owner = readLockOwner<SiteLockOwner>(path);
      if (owner && owner.pid === process.pid && owner.rolloutId === this.rolloutId) {
        try {
          unlinkSync(path);
        } catch {
          /* gone */
        }
      }
    }
    this.held = [];
  }
}
