/**
 * An honest `G` flag (cvmfs-publish/gc-flag.ts, repository.ts writeHead): a repository is
 * garbage-collectable only when created so (`repo init --gc` / `-z`, as `cvmfs_server mkfs -z`);
 * its manifests say `G yes` and `repo gc` deletes objects. Every other repository says `G no` and
 * `repo gc` refuses it (exit 2, nothing deleted) until `repo set-gc` marks it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { garbageCollect, initRepository, publishTree, verifyRepository } from '../../cvmfs-publish/index.ts';
import { UsageError } from '../../base/errors.ts';
import { gf, manifestFields, rmrf, tmpDir } from './helpers.ts';

let dir: string;

function source(name: string, content: string): string {
  const src = path.join(dir, `src-${name}`);
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'file'), content);
  return src;
}

/** Every object file under data/ (names only). */
function objects(repo: string): string[] {
  return fs.readdirSync(path.join(repo, 'data')).filter((d) => /^[0-9a-f]{2}$/.test(d)).flatMap((d) => fs.readdirSync(path.join(repo, 'data', d)).map((f) => `${d}/${f}`)).sort();
}

/** Two publishes of the same path: the first revision's objects become garbage. */
async function twoRevisions(repo: string): Promise<void> {
  await publishTree(repo, source(`${path.basename(repo)}-1`, 'first\n'.repeat(100)), 'img', { onProgress: () => {} });
  await publishTree(repo, source(`${path.basename(repo)}-2`, 'second\n'.repeat(100)), 'img', { onProgress: () => {} });
}

beforeAll(() => {
  dir = tmpDir('gcflag');
});
afterAll(() => rmrf(dir));

describe('G flag', () => {
  it('by default (as cvmfs_server mkfs without -z) a repository says G no and `repo gc` refuses it, deleting nothing', async () => {
    const repo = path.join(dir, 'plain');
    const init = gf(['repo', 'init', repo, '--name', 'plain.example.org', '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout).garbageCollectable).toBe(false);
    expect(manifestFields(repo).G).toBe('no');
    await twoRevisions(repo);
    expect(manifestFields(repo).G).toBe('no');
    const before = objects(repo);
    for (const args of [['--keep-revisions', '1'], ['--dry-run']]) {
      const r = gf(['repo', 'gc', repo, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('plain.example.org');
      expect(r.stderr).toContain(repo);
      expect(r.stderr).toMatch(/not garbage-collectable/);
      expect(r.stderr).toMatch(/repo init --gc/);
    }
    await expect(garbageCollect(repo, { keepRevisions: 1 })).rejects.toBeInstanceOf(UsageError);
    expect(objects(repo)).toEqual(before);
    expect(manifestFields(repo).G).toBe('no');
  });

  it('`repo init --gc` (and -z): G yes in every manifest, recorded in the config, and `repo gc` deletes objects', async () => {
    for (const flag of ['--gc', '-z']) {
      const repo = path.join(dir, `collectable${flag}`);
      const init = gf(['repo', 'init', repo, '--name', 'gc.example.org', flag]);
      expect(init.code, init.stderr).toBe(0);
      expect(init.stdout).toMatch(/garbage-collectable/);
      expect(JSON.parse(fs.readFileSync(path.join(repo, '.gridforge/config.json'), 'utf8')).garbageCollectable).toBe(true);
      expect(manifestFields(repo).G).toBe('yes');
      if (flag === '-z') continue;
      await twoRevisions(repo);
      expect(manifestFields(repo).G).toBe('yes');
      const before = objects(repo).length;
      const r = gf(['repo', 'gc', repo, '--keep-revisions', '1', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).removed).toBeGreaterThan(0);
      expect(objects(repo).length).toBeLessThan(before);
      expect(manifestFields(repo).G).toBe('yes'); // gc signs a new manifest: still G yes
      expect((await verifyRepository(repo)).problems).toEqual([]);
    }
  });

  it('`repo set-gc` marks an existing repository collectable (G yes at once); then gc runs', async () => {
    const repo = path.join(dir, 'later');
    await initRepository(repo, { name: 'later.example.org' });
    await twoRevisions(repo);
    const revision = manifestFields(repo).S;
    const r = gf(['repo', 'set-gc', repo, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ changed: true, garbageCollectable: true });
    expect(manifestFields(repo)).toMatchObject({ G: 'yes', S: revision });
    expect((await verifyRepository(repo)).problems).toEqual([]);
    expect((await garbageCollect(repo, { keepRevisions: 1 })).removed).toBeGreaterThan(0);
    await publishTree(repo, source('later-3', 'third\n'), 'img', { onProgress: () => {} });
    expect(manifestFields(repo).G).toBe('yes');
    expect((await verifyRepository(repo)).problems).toEqual([]);
  });
});
