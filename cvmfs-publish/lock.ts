/**
 * One publisher per repository: `<repo>/.gridforge/lock` created exclusively holding the owner's
 * pid, host, start time and kernel start time (base/pid-lock.ts). A second publisher fails at once.
 * A lock whose process is provably gone (same host; exited, a zombie, or its pid reused by another
 * process) is stale: `gridforge repo abort` clears it, and so does the next transaction by itself
 * (cvmfs-publish/abort.ts recoverDeadHolder). A lock taken on another host is never assumed dead.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { isStale, ownerOfThisProcess, readLockOwner, releaseLock, tryCreateLock, type LockOwner } from '../base/pid-lock.ts';

export interface LockInfo extends LockOwner {
  operation: string;
}

/** An unreadable (empty, torn) lock older than this is left over by a publisher killed while creating it. */
const UNREADABLE_GRACE_MS = 10_000;

export function lockFile(repoDir: string): string {
  return path.join(repoDir, '.gridforge', 'lock');
}

/** Where a stale lock is being cleared (created exclusively: one recoverer at a time). */
export function recoveryLockFile(repoDir: string): string {
  return path.join(repoDir, '.gridforge', 'lock.recover');
}

export type ReadLock = LockInfo & { stale: boolean; unreadable?: boolean; ageMs?: number };

/** The lock's owner and whether it is stale; an unreadable lock file is stale; undefined when there is none. */
export function readLock(repoDir: string): ReadLock | undefined {
  const info = readLockOwner<LockInfo>(lockFile(repoDir));
  if (info) return { ...info, stale: isStale(info) };
  let st: fs.Stats;
  try {
    st = fs.lstatSync(lockFile(repoDir));
  } catch {
    return undefined;
  }
  return { pid: 0, host: '?', started: '?', operation: '?', stale: true, unreadable: true, ageMs: Date.now() - st.mtimeMs };
}

/**
 * Whether the holder of a lock is provably gone, so that a new transaction may clear it without
 * being asked: a readable lock whose owner on this host is dead, or an unreadable one older than a
 * few seconds (a publisher killed between creating and writing it).
 */
export function isProvablyDead(lock: ReadLock): boolean {
  if (lock.unreadable) return (lock.ageMs ?? 0) > UNREADABLE_GRACE_MS;
  return lock.stale;
}

/** Whether two lock records name the same holder. */
export function sameHolder(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.host === b.host && a.started === b.started;
}

export function describeHolder(l: ReadLock | LockInfo): string {
  return `${l.operation}, pid ${l.pid} on ${l.host}, started ${l.started}`;
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
      throw new UsageError(`repository is locked by a transaction that is no longer running (${describeHolder(held)})`, {
        where: file,
        hint: `run \`gridforge repo abort ${repoDir}\` to clear the stale transaction, then retry`,
      });
    }
    throw new UsageError(`repository is locked by another publisher (${held ? describeHolder(held) : 'released meanwhile'})`, {
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
