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

/**
 * One xattr of every entry in a repository's current catalogs (root and nested, read with sqlite3
 * from the inflated objects into `scratch`): file name -> value as hex. The blob is cvmfs's
 * version 1 (cvmfs xattr.cc): u8 version, u8 count, (u8 key length, u8 value length, key, value)*.
 */
export function catalogXattr(repo: string, scratch: string, key: string): Map<string, string> {
  const found = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (hash: string) => {
    if (seen.has(hash)) return;
    seen.add(hash);
    const db = inflateObject(repo, hash, 'C', path.join(scratch, `cat-${hash}.db`));
    for (const line of sqlite(db, "SELECT name || '|' || hex(xattr) FROM catalog WHERE xattr IS NOT NULL").split('\n').filter(Boolean)) {
      const [name, hx] = line.split('|');
      const blob = Buffer.from(hx, 'hex');
      if (blob[0] !== 1) throw new Error(`${name}: xattr blob version ${blob[0]}, expected 1`);
      let pos = 2;
      for (let i = 0; i < blob[1]; i++) {
        const kl = blob[pos];
        const vl = blob[pos + 1];
        if (blob.subarray(pos + 2, pos + 2 + kl).toString() === key) found.set(name, blob.subarray(pos + 2 + kl, pos + 2 + kl + vl).toString('hex'));
        pos += 2 + kl + vl;
      }
    }
    for (const nested of sqlite(db, 'SELECT sha1 FROM nested_catalogs').split('\n').filter(Boolean)) visit(nested);
  };
  visit(manifestFields(repo).C);
  return found;
}
