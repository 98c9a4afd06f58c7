/**
 * A lock file that holds its owner's pid, host and start time, created with O_EXCL | O_NOFOLLOW.
 * A lock whose owner runs on this host and is gone (or a zombie: exited, not yet reaped) is stale;
 * the caller decides whether a stale lock is taken over or reported. One implementation for the
 * repository's publisher lock and the rollouts' site locks.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LockOwner {
  pid: number;
  host: string;
  started: string;
  [extra: string]: unknown;
}

/** Whether `pid` is a live process on this host (a zombie counts as dead). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces and parentheses, so read after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

/** The owner recorded in a lock file, or null when it is missing or unreadable. */
export function readLockOwner<T extends LockOwner = LockOwner>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Whether a lock's owner is gone: same host and not alive. A lock held from another host is never stale. */
export function isStale(owner: LockOwner | null): boolean {
  if (!owner) return true;
  return owner.host === os.hostname() && !isProcessAlive(owner.pid);
}

/** The owner record for this process, with extra fields. */
export function ownerOfThisProcess<E extends Record<string, unknown>>(extra: E): LockOwner & E {
  return { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), ...extra };
}

/** Create the lock file exclusively; returns false when it already exists. */
export function tryCreateLock(file: string, owner: LockOwner): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(owner));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** Remove a lock file if it is still the one `owner` wrote (same pid and start). */
export function releaseLock(file: string, owner: LockOwner): void {
  const now = readLockOwner(file);
  if (now && now.pid === owner.pid && now.started === owner.started) fs.rmSync(file, { force: true });
}
