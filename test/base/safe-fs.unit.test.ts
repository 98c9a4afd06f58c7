// base/safe-fs.ts: temporaries never follow planted links, opens refuse swapped types, reads are bounded.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { isSingleComponent, openRegularNoFollow, readBoundedFile, tempNameBeside, writeFileAtomic } from '../../base/safe-fs.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gf-base-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('writes with the given mode, whatever the umask, and leaves no temporary', () => {
    const f = path.join(dir, 'out.json');
    writeFileAtomic(f, '{"a":1}\n', { mode: 0o640, durable: true });
    expect(fs.readFileSync(f, 'utf8')).toBe('{"a":1}\n');
    expect(fs.statSync(f).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(dir)).toEqual(['out.json']);
  });

  it('replaces a symlink at the target instead of writing through it', () => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'secret', { mode: 0o600 });
    const f = path.join(dir, 'out');
    fs.symlinkSync(victim, f);
    writeFileAtomic(f, 'new');
    expect(fs.readFileSync(victim, 'utf8')).toBe('secret');
    expect(fs.lstatSync(f).isFile()).toBe(true);
  });

  it('temporary names are random: two calls never share one', () => {
    const a = tempNameBeside(path.join(dir, 'x'));
    const b = tempNameBeside(path.join(dir, 'x'));
    expect(a).not.toBe(b);
    expect(path.basename(a)).toMatch(/^\.x\.[0-9a-f]{12}\.tmp$/);
  });
});

describe('openRegularNoFollow / readBoundedFile', () => {
  it('refuses a symlink, a FIFO (without blocking) and a directory, naming the entry', () => {
    fs.writeFileSync(path.join(dir, 'real'), 'x');
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    fs.mkdirSync(path.join(dir, 'sub'));
    for (const name of ['link', 'fifo', 'sub']) {
      expect(() => openRegularNoFollow(path.join(dir, name), `entry ${name}`)).toThrow(expect.objectContaining({ where: `entry ${name}` }));
    }
  });

  it('refuses a file that is not the one scanned (inode or size changed)', () => {
    const f = path.join(dir, 'f');
    fs.writeFileSync(f, 'abc');
    const st = fs.statSync(f);
    const { fd } = openRegularNoFollow(f, 'f', { dev: st.dev, ino: st.ino, size: st.size });
    fs.closeSync(fd);
    fs.renameSync(f, `${f}.old`); // keeps the old inode in use, so the new file cannot reuse it
    fs.writeFileSync(f, 'abc');
    expect(() => openRegularNoFollow(f, 'f', { dev: st.dev, ino: st.ino, size: st.size })).toThrow(/replaced/);
    fs.writeFileSync(`${f}.old`, 'abcd');
    expect(() => openRegularNoFollow(`${f}.old`, 'f', { dev: st.dev, ino: st.ino, size: st.size })).toThrow(/changed size/);
  });

  it('bounds what it reads', () => {
    const f = path.join(dir, 'big');
    fs.writeFileSync(f, Buffer.alloc(4096));
    expect(readBoundedFile(f, 'big', 8192).length).toBe(4096);
    expect(() => readBoundedFile(f, 'big', 1024)).toThrow(/more than the 1024 bytes/);
    expect(() => readBoundedFile('/dev/zero', '/dev/zero')).toThrow(/not a regular file/);
  });
});

describe('isSingleComponent', () => {
  it('accepts names and refuses empty, dot, dot-dot, slashes and NUL', () => {
    expect(isSingleComponent('a.b')).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', '/', 'a\0b']) expect(isSingleComponent(bad)).toBe(false);
  });
});
