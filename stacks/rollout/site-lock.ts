/**
 * Site locks in the record directory (`<dir>/locks/<site>.lock`): a rollout holds one lock per
 * targeted site for as long as its runner lives, so two rollouts over the same sites at once are
 * refused. A lock is created with O_EXCL; one whose owner process is gone (a killed runner) is
 * stale and may be taken over (by `resume`, or by a new rollout).
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { GridforgeError } from '../../base/errors.ts';

export interface LockOwner {
  rolloutId: string;
  pid: number;
  hostname: string;
  at: string;
}

export function lockDir(recordDir: string): string {
  return resolve(recordDir, 'locks');
}

function lockFile(recordDir: string, site: string): string {
  return join(lockDir(recordDir), `${site.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
}

/** Whether a lock's owner still runs (same machine: pid check; another machine: assume yes). */
function ownerLive(owner: LockOwner | null): boolean {
  if (!owner) return false;
  if (owner.hostname !== hostname()) return true;
  return isAlive(owner.pid);
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
    const me: LockOwner = { rolloutId: this.rolloutId, pid: process.pid, hostname: hostname(), at: new Date().toISOString() };
    const conflicts: string[] = [];
    for (const site of sites) {
      const path = lockFile(this.recordDir, site);
      for (let attempt = 0; ; attempt++) {
        try {
          const fd = openSync(path, 'wx', 0o644);
          writeSync(fd, JSON.stringify(me));
          closeSync(fd);
          this.held.push(path);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
          const owner = readOwner(path);
          const ours = owner?.rolloutId === this.rolloutId && !(owner.pid !== process.pid && ownerLive(owner));
          if (ownerLive(owner) && !ours) {
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
      const owner = readOwner(path);
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
