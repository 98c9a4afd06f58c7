// base/pid-lock.ts: exclusive lock files; dead and zombie owners are stale, live ones are not.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { isProcessAlive, isStale, ownerOfThisProcess, readLockOwner, releaseLock, tryCreateLock } from '../../base/pid-lock.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('pid-lock', () => {
  it('creates once, refuses a second holder, releases only its own lock', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-lock-'));
    dirs.push(d);
    const file = path.join(d, 'sub', 'lock');
    const me = ownerOfThisProcess({ operation: 'test' });
    expect(tryCreateLock(file, me)).toBe(true);
    expect(tryCreateLock(file, me)).toBe(false);
    expect(readLockOwner(file)).toMatchObject({ pid: process.pid, operation: 'test' });
    expect(isStale(readLockOwner(file))).toBe(false);
    releaseLock(file, { ...me, started: 'other' });
    expect(fs.existsSync(file)).toBe(true);
    releaseLock(file, me);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a lock file that is a planted symlink is not followed', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-lock-'));
    dirs.push(d);
    fs.writeFileSync(path.join(d, 'victim'), 'keep');
    fs.symlinkSync(path.join(d, 'victim'), path.join(d, 'lock'));
    expect(tryCreateLock(path.join(d, 'lock'), ownerOfThisProcess({}))).toBe(false);
    expect(fs.readFileSync(path.join(d, 'victim'), 'utf8')).toBe('keep');
  });

  it('an exited process is dead, and so is a zombie (exited, not yet reaped)', async () => {
    // The child's child exits only once its parent (sh) has become `sleep`, which never reaps it, so
    // it stays a zombie (had it exited earlier, sh could have reaped it before its exec).
    const sh = spawn('sh', ['-c', 'p=$$; (while [ "$(cat /proc/$p/comm)" != sleep ]; do sleep 0.01; done) & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number((await new Promise<Buffer>((r) => sh.stdout!.once('data', r))).toString().trim());
    const state = () => / \) ([A-Z]) /.exec(` ${fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/s, ')')}`)?.[1];
    for (let i = 0; i < 500 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    expect(isProcessAlive(pid)).toBe(false);
    expect(isStale({ pid, host: os.hostname(), started: '' })).toBe(true);
    expect(isStale({ pid, host: 'another-host', started: '' })).toBe(false);
    expect(isProcessAlive(sh.pid!)).toBe(true);
    sh.kill();
  });
});
