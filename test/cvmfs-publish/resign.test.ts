/**
 * `repo resign` (cvmfs-publish/resign.ts): re-signs `.cvmfswhitelist` without a publish, moving its
 * `E` line (expiry) as asked; holds the repository lock; leaves the manifest alone. `repo init`
 * prints the cron line that keeps a repository mounting; `repo verify` warns 48 hours before the
 * whitelist expires (exit 0, exit 1 with --strict) and fails once it has expired.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTransaction, resignWhitelist, verifyRepository } from '../../cvmfs-publish/index.ts';
import { gf, rmrf, tmpDir } from './helpers.ts';

let dir: string;
let repo: string;
const HOUR = 3600_000;

/** The whitelist's `E` line as a Date (YYYYMMDDhhmmss UTC). */
function expiry(): Date {
  const raw = fs.readFileSync(path.join(repo, '.cvmfswhitelist'));
  const line = raw.subarray(0, raw.indexOf('\n--\n')).toString().split('\n').find((l) => /^E\d{14}$/.test(l))!;
  const m = /^E(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(line)!;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

beforeAll(() => {
  dir = tmpDir('resign');
  repo = path.join(dir, 'repo');
});
afterAll(() => rmrf(dir));

describe('repo resign', () => {
  it('repo init prints the cron line that re-signs the whitelist (human and --json)', () => {
    const r = gf(['repo', 'init', repo, '--name', 'resign.example.org']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`0 4 * * 1 gridforge repo resign ${repo}\n`);
    const j = gf(['repo', 'init', path.join(dir, 'other'), '--name', 'other.example.org', '--json']);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout).cron).toBe(`0 4 * * 1 gridforge repo resign ${path.join(dir, 'other')}`);
  });

  it('--days 1: E moves to 24 hours from now; verify warns (exit 0), --strict fails; a default resign extends it to 30 days', () => {
    const manifest = fs.readFileSync(path.join(repo, '.cvmfspublished'));
    const before = expiry();
    expect(before.getTime() - Date.now()).toBeGreaterThan(29 * 24 * HOUR);
    const t0 = Date.now();
    const r = gf(['repo', 'resign', repo, '--days', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ name: 'resign.example.org', days: 1 });
    const soon = expiry();
    expect(soon.toISOString().slice(0, 19)).toBe(out.expires.slice(0, 19));
    expect(soon.getTime()).toBeGreaterThanOrEqual(Math.floor((t0 + 24 * HOUR) / 1000) * 1000);
    expect(soon.getTime()).toBeLessThanOrEqual(Date.now() + 24 * HOUR);
    expect(fs.readFileSync(path.join(repo, '.cvmfspublished')).equals(manifest)).toBe(true); // no publish
    expect(fs.readdirSync(repo).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const v = gf(['repo', 'verify', repo]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/warning: \.cvmfswhitelist: expires in 2[34]\.\d hours .*repo resign/);
    const strict = gf(['repo', 'verify', repo, '--strict', '--json']);
    expect(strict.code, strict.stderr).toBe(1);
    expect(JSON.parse(strict.stdout).warnings[0].where).toBe('.cvmfswhitelist');

    const again = gf(['repo', 'resign', repo]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/re-signed the whitelist of resign\.example\.org: valid until .* \(30 days\)/);
    expect(expiry().getTime() - soon.getTime()).toBeGreaterThan(28 * 24 * HOUR);
    const clean = gf(['repo', 'verify', repo, '--strict']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stderr).not.toMatch(/warning/);
  });

  it('an expired whitelist fails verify; resign brings it back', async () => {
    resignWhitelist(repo, { days: 1 });
    const later = new Date(Date.now() + 25 * HOUR);
    const v = await verifyRepository(repo, { now: later });
    expect(v.ok).toBe(false);
    expect(v.problems).toContainEqual({ where: '.cvmfswhitelist', problem: expect.stringMatching(/^expired at /) });
    resignWhitelist(repo);
    expect((await verifyRepository(repo, { now: later })).problems).toEqual([]);
  });

  it('takes the repository lock, and refuses a bad --days without touching the whitelist', () => {
    const wl = fs.readFileSync(path.join(repo, '.cvmfswhitelist'));
    const tx = openTransaction(repo, { onProgress: () => {} });
    try {
      expect(() => resignWhitelist(repo)).toThrow(/locked by another publisher/);
    } finally {
      void tx.abort();
    }
    for (const days of ['0', '400', 'x']) {
      const r = gf(['repo', 'resign', repo, '--days', days]);
      expect(r.code, `--days ${days}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/--days/);
    }
    expect(fs.readFileSync(path.join(repo, '.cvmfswhitelist')).equals(wl)).toBe(true);
    expect(gf(['repo', 'resign', path.join(dir, 'missing')]).code).toBe(2);
  });
});
