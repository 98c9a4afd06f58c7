/**
 * One publisher per repository: `<repo>/.gridforge/lock` created with O_EXCL holding the owner's pid.
 * A second publisher fails at once; a lock whose process is gone is reported as stale (clear it with
 * `gridforge repo abort`).
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { UsageError } from '../base/errors.ts';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  operation: string;
}

export function lockFile(repoDir: string): string {
  return path.join(repoDir, '.gridforge', 'lock');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLock(repoDir: string): (LockInfo & { stale: boolean }) | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(lockFile(repoDir), 'utf8')) as LockInfo;
    return { ...info, stale: info.host === os.hostname() && !alive(info.pid) };
  } catch {
    return fs.existsSync(lockFile(repoDir)) ? { pid: 0, host: '?', started: '?', operation: '?', stale: true } : undefined;
  }
}

export class RepoLock {
  private released = false;
  private constructor(readonly repoDir: string) {}

  static acquire(repoDir: string, operation: string): RepoLock {
    const file = lockFile(repoDir);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), operation };
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      fs.writeSync(fd, JSON.stringify(info));
      fs.closeSync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
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
    return new RepoLock(repoDir);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    fs.rmSync(lockFile(this.repoDir), { force: true });
  }
}
