/**
 * Clearing a stale transaction (killed publisher): roll a committed-but-unfinished head forward
 * (reflog), remove temp objects (data/txn/ and `.<hash>.<pid>...tmp` beside objects in data/xx/),
 * temp manifest/whitelist files and the lock. `repo abort` asks for it (`abortTransaction`); the
 * next transaction does it by itself when the lock's holder is provably gone (`recoverDeadHolder`,
 * called by transaction.ts before it takes the lock). Either way the work happens while holding
 * `.gridforge/lock.recover` (one clearer at a time), and the lock is removed only if it still names
 * the holder found dead, so a publisher that started meanwhile never loses its lock or its files.
 * Objects a killed publish stored completely stay (harmless; `repo gc` removes them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { isStale, ownerOfThisProcess, readLockOwner, releaseLock, tryCreateLock } from '../base/pid-lock.ts';
import { RowImageStore } from './catalog-image-store.ts';
import { describeHolder, isProvablyDead, lockFile, readLock, recoveryLockFile, RepoLock, sameHolder, type ReadLock } from './lock.ts';
import { removeTempObjects } from './object-store.ts';
import { finishPending, readHead } from './repository.ts';

export interface AbortResult {
  hadLock: boolean;
  lockOwner?: string;
  removedTempFiles: number;
}

export function abortTransaction(repoDir: string, opts: { force?: boolean } = {}): AbortResult {
  const dir = path.resolve(repoDir);
  readHead(dir);
  const lock = readLock(dir);
  if (lock && !lock.stale && !opts.force) {
    throw new UsageError(`a publisher is still running (${describeHolder(lock)})`, {
      where: lockFile(dir),
      hint: 'wait for it, or stop it first; pass --force only if you are sure it is gone',
    });
  }
  if (!lock && !fs.existsSync(path.dirname(lockFile(dir)))) return { hadLock: false, removedTempFiles: removeLeftovers(dir) }; // not a gridforge repository: no lock to take
  if (!lock) {
    // nothing holds the repository: hold it ourselves while removing leftovers, so a publisher starting now waits
    const own = RepoLock.acquire(dir, 'abort');
    try {
      return { hadLock: false, removedTempFiles: removeLeftovers(dir) };
    } finally {
      own.release();
    }
  }
  const r = withRecoveryLock(dir, () => clearHolder(dir, lock));
  if (!r) {
    throw new UsageError('the lock changed hands while aborting: another publisher started', {
      where: lockFile(dir),
      hint: 'run `gridforge repo abort` again once that publisher is done',
    });
  }
  return r;
}

/**
 * When the lock's holder is provably gone (same host; exited, zombie, pid reused; see lock.ts
 * isProvablyDead), clear its transaction as `repo abort` does and return what was cleared;
 * otherwise (no lock, a live holder, a holder on another host) change nothing and return undefined.
 */
export function recoverDeadHolder(repoDir: string): AbortResult | undefined {
  const dir = path.resolve(repoDir);
  const lock = readLock(dir);
  if (!lock || !isProvablyDead(lock)) return undefined;
  return withRecoveryLock(dir, () => clearHolder(dir, lock));
}

/** The line a transaction prints when it cleared a dead publisher's transaction. */
export function recoveryMessage(r: AbortResult): string {
  return `recovered: cleared the transaction of a publisher that is no longer running (${r.lockOwner}); removed ${r.removedTempFiles} temp files`;
}

/**
 * Take the repository lock for `operation`, first clearing the transaction of a provably dead
 * holder (recoverDeadHolder; said on stderr): every writer (publish, tag, rollback, gc, set-gc,
 * resign) recovers from a killed publisher by itself, so a pipeline never needs a second try.
 */
export function acquireRecovering(repoDir: string, operation: string): { lock: RepoLock; recovered?: AbortResult } {
  const recovered = recoverDeadHolder(repoDir);
  if (recovered) process.stderr.write(`warning: ${recoveryMessage(recovered)}\n`);
  return { lock: RepoLock.acquire(repoDir, operation), recovered };
}

/** Run `fn` holding `.gridforge/lock.recover`; a recovery lock left by a dead clearer is taken over once. */
function withRecoveryLock<T>(dir: string, fn: () => T): T {
  const file = recoveryLockFile(dir);
  const me = ownerOfThisProcess({ operation: 'recover' });
  for (let attempt = 0; !tryCreateLock(file, me); attempt++) {
    const other = readLockOwner(file);
    if (attempt > 0 || !isStale(other)) {
      throw new UsageError(`another process is clearing a stale transaction (pid ${other?.pid ?? '?'} on ${other?.host ?? '?'})`, { where: file, hint: 'retry in a moment' });
    }
    fs.rmSync(file, { force: true });
  }
  try {
    return fn();
  } finally {
    releaseLock(file, me);
  }
}

/** Clear the transaction of `expected` (the holder found stale); undefined when the lock now names someone else. */
function clearHolder(dir: string, expected: ReadLock): AbortResult | undefined {
  const now = readLock(dir);
  if (now && !(now.unreadable && expected.unreadable) && !sameHolder(now, expected)) return undefined;
  const removed = removeLeftovers(dir);
  if (now) fs.rmSync(lockFile(dir), { force: true });
  return { hadLock: !!now, lockOwner: now ? describeHolder(now) : undefined, removedTempFiles: removed };
}

/** Remove what a killed transaction leaves behind and roll a committed head forward; returns how many files went. */
function removeLeftovers(dir: string): number {
  let removed = 0;
  const txn = path.join(dir, 'data', 'txn');
  if (fs.existsSync(txn)) {
    for (const f of fs.readdirSync(txn)) {
      fs.rmSync(path.join(txn, f), { force: true, recursive: true });
      removed++;
    }
  }
  removed += removeTempObjects(dir);
  for (const f of fs.readdirSync(dir)) {
    if (/^\.cvmfs.*\.\d+\.tmp$/.test(f) || /^\.\.cvmfs[a-z_]+\.[0-9a-f]{12}\.tmp$/.test(f)) { // old pid names and base/safe-fs.ts tempNameBeside
      fs.rmSync(path.join(dir, f), { force: true });
      removed++;
    }
  }
  finishPending(dir);
  const state = path.join(dir, '.gridforge');
  if (fs.existsSync(state)) for (const f of fs.readdirSync(state)) if (f.endsWith('.tmp')) { fs.rmSync(path.join(state, f), { force: true }); removed++; }
  removed += new RowImageStore(dir).removeTemp();
  return removed;
}
