/**
 * One publisher per repository: `<repo>/.gridforge/lock` created exclusively holding the owner's
 * pid, host and start (base/pid-lock.ts). A second publisher fails at once; a lock whose process is
 * gone (or a zombie) is reported as stale (clear it with `gridforge repo abort`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { isStale, ownerOfThisProcess, readLockOwner, releaseLock, tryCreateLock, type LockOwner } from '../base/pid-lock.ts';

export interface LockInfo extends LockOwner {
  operation: string;
}

export function lockFile(repoDir: string): string {
  return path.join(repoDir, '.gridforge', 'lock');
}

/** The lock's owner and whether it is stale; an unreadable lock file is stale; undefined when there is none. */
export function readLock(repoDir: string): (LockInfo & { stale: boolean }) | undefined {
  const info = readLockOwner<LockInfo>(lockFile(repoDir));
  if (info) return { ...info, stale: isStale(info) };
  return fs.existsSync(lockFile(repoDir)) ? { pid: 0, host: '?', started: '?', operation: '?', stale: true } : undefined;
}

export class RepoLock {
  private released = false;
  private constructor(readonly repoDir: string, private readonly owner: LockInfo) {}

  static acquire(repoDir: string, operation: string): RepoLock {
    const file = lockFile(repoDir);
    const info: LockInfo = ownerOfThisProcess({ operation });
    if (tryCreateLock(file, info)) return new RepoLock(repoDir, info);
    const held = readLock(repoDir);
    if (held?.stale) {
      throw new UsageError(`repository is locked by a transaction that is no longer running (${held.operation}, pid ${held.pid}, started ${held.started})`, {
        where: file,
        hint: `run \`gridforge repo abort ${repoDir}\` to clear the stale transaction, then retry`,
      });
    }
    throw new UsageError(`repository is locked by another publisher (${held?.operation}, pid ${held?.pid} on ${held?.host}, started ${held?.started})`, {
      where: file,
      hint: 'wait for that transaction to finish; only one publisher may write a repository at a time',
    });
  }

  /** Remove the lock file if it is still this lock (a `repo abort --force` may have cleared it meanwhile). */
  release(): void {
    if (this.released) return;
    this.released = true;
    releaseLock(lockFile(this.repoDir), this.owner);
  }
}
