/** Shared helpers of the repository suites: temp dirs (prefix gf-cvmfs-), source trees, CLI, sqlite3/openssl. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** The cvmfs_server reference repository in `shared/` beside the checkout (CI clones main next to it). */
export const FIXTURE = process.env.GRIDFORGE_SHARED_DIR
  ? path.join(process.env.GRIDFORGE_SHARED_DIR, 'fixtures/cvmfs-reference')
  : path.resolve(ROOT, '../shared/fixtures/cvmfs-reference');
export const FIXTURE_REPO = path.join(FIXTURE, 'repo');
export const FIXTURE_PUB = path.join(FIXTURE, 'ref.example.org.pub');
export const CLI = path.join(ROOT, 'scripts/bin/gridforge.mjs');

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gf-cvmfs-${tag}-`));
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Run the gridforge CLI; returns code/stdout/stderr (never throws). */
export function gf(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, GRIDFORGE_QUIET: '1', ...env }, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sqlite(db: string, sql: string): string {
  return execFileSync('sqlite3', [db, sql], { encoding: 'utf8' }).trim();
}

/** Inflate an object of a repository into a file (for the sqlite3 CLI). */
export function inflateObject(repo: string, hash: string, suffix: string, dest: string): string {
  fs.writeFileSync(dest, zlib.inflateSync(fs.readFileSync(path.join(repo, 'data', hash.slice(0, 2), hash.slice(2) + suffix))));
  return dest;
}

export function manifestFields(repo: string): Record<string, string> {
  const raw = fs.readFileSync(path.join(repo, '.cvmfspublished'));
  const body = raw.subarray(0, raw.indexOf('\n--\n')).toString();
  return Object.fromEntries(body.split('\n').map((l) => [l[0], l.slice(1)]));
}

/** A small source tree with every kind of entry the format has. */
export function makeTree(dir: string, variant = 'a'): void {
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cvmfs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'deep/a/b/c'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/os-release'), `NAME=${variant}\n`);
  fs.writeFileSync(path.join(dir, 'etc/shared'), 'same content\n');
  fs.writeFileSync(path.join(dir, 'deep/a/b/c/shared-copy'), 'same content\n');
  fs.writeFileSync(path.join(dir, 'bin/tool'), Buffer.alloc(70_000, 7));
  fs.chmodSync(path.join(dir, 'bin/tool'), 0o4755);
  fs.writeFileSync(path.join(dir, 'bin/random'), Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7919 + variant.charCodeAt(0)) % 251)));
  fs.linkSync(path.join(dir, 'bin/tool'), path.join(dir, 'bin/tool-hardlink'));
  fs.symlinkSync('../etc/os-release', path.join(dir, 'bin/rel-link'));
  fs.symlinkSync('/usr/share/zoneinfo/UTC', path.join(dir, 'etc/localtime'));
  fs.writeFileSync(path.join(dir, 'ünïcødé'), 'x\n');
  fs.writeFileSync(path.join(dir, 'empty'), '');
}
