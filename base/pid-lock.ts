/**
 * A lock file that holds its owner's pid, host and start time, created with O_EXCL | O_NOFOLLOW.
 * A lock whose owner runs on this host and is gone (or a zombie: exited, not yet reaped; or a
 * different process that reuses its pid: the kernel's start time, field 22 of /proc/<pid>/stat,
 * and the boot id differ from the recorded ones) is stale; the caller decides whether a stale lock
 * is taken over or reported. A lock held from another host is never stale. One implementation for
 * the repository's publisher lock and the rollouts' site locks. proc(5) describes /proc/<pid>/stat.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LockOwner {
  pid: number;
  host: string;
  started: string;
  /** the owner's start time in clock ticks after boot (/proc/<pid>/stat field 22), when known */
  procStart?: string;
  /** /proc/sys/kernel/random/boot_id when the lock was taken, when known */
  bootId?: string;
  [extra: string]: unknown;
}

/**
 * State (field 3) and start time (field 22) of a process from /proc/<pid>/stat, or undefined when
 * the process or /proc is missing. comm (field 2) may hold spaces and parentheses: fields are
 * counted after the last ')'.
 */
export function procStat(pid: number): { state: string; start: string } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // rest[0] is field 3
  return { state: rest[0] ?? '', start: rest[19] ?? '' };
}

/** This boot's id (changes at every reboot), or undefined without /proc. */
export function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process on this host (a zombie 'Z' or dead 'X' one counts as dead). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const st = procStat(pid);
  if (!st) return true; // no /proc, hidden by hidepid, or gone this instant: kill(0) said it exists, so never call it dead
  return st.state !== 'Z' && st.state !== 'X';
}

/**
 * Whether the process a lock record names still runs: alive on this host, and, when the record
 * holds them, the same boot and the same start time (else its pid now belongs to another process).
 */
export function isOwnerAlive(owner: LockOwner): boolean {
  if (!isProcessAlive(owner.pid)) return false;
  const boot = bootId();
  if (owner.bootId && boot && owner.bootId !== boot) return false;
  if (owner.procStart) {
    const st = procStat(owner.pid);
    if (st && st.start !== owner.procStart) return false;
  }
  return true;
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
  return owner.host === os.hostname() && !isOwnerAlive(owner);
}

/** The owner record for this process, with extra fields. */
export function ownerOfThisProcess<E extends Record<string, unknown>>(extra: E): LockOwner & E {
  const start = procStat(process.pid)?.start;
  const boot = bootId();
  return { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), ...(start ? { procStart: start } : {}), ...(boot ? { bootId: boot } : {}), ...extra };
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
