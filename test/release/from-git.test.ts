/**
 * Publish on tag: `gridforge release --from-git` in a temporary git repository. Untagged and
 * non-version tags are refused with a clear message (exit 2); --dry-run prints the whole plan
 * (images, sandboxes, Java runtime, JAliEn, tag) and changes nothing; a real run (image steps left
 * out of this config, they need docker builds) publishes JAliEn as the default and tags the
 * revision with the version; a re-run is a no-op.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildJobRunnerJar, checkoutRepo, gridforge, i386Debs, initRepo, moduleShell, removeDir, revisionOf, tempDir } from './helpers.ts';
import { projectConfigYaml } from '../support/project-config.ts';

let dir: string;
let git: string;
let repo: string;

const gitc = (...args: string[]) => execa('git', ['-C', git, ...args], { env: { GIT_AUTHOR_NAME: 'gfrel', GIT_AUTHOR_EMAIL: 'gfrel@example.org', GIT_COMMITTER_NAME: 'gfrel', GIT_COMMITTER_EMAIL: 'gfrel@example.org' } });

function config(extra: { images: string[]; java32?: { jdk: string; libs: string[] } }): string {
  const release = { images: extra.images, java32: extra.java32 && { ...extra.java32, mountPrefix: '/cvmfs/alice.gfrel.local' } };
  return projectConfigYaml({ prefix: 'gfrel', vobox: true, repository: { dir: repo, name: 'alice.gfrel.local', keys: join(dir, 'keys') }, release });
}

beforeAll(async () => {
  dir = await tempDir('fromgit');
  repo = await initRepo(dir);
  git = join(dir, 'jalien-src');
  await mkdir(join(git, 'build'), { recursive: true });
  await buildJobRunnerJar(join(git, 'build'), 'tagged');
  await writeFile(join(git, 'packages.txt'), 'bash\n');
  await writeFile(join(git, 'gridforge-plan.yaml'), config({ images: ['job', 'vobox-slurm'], java32: await i386Debs() }));
  await writeFile(join(git, 'gridforge-badjava.yaml'), config({ images: [], java32: { jdk: join(dir, 'missing-jdk.deb'), libs: [] } }).replace('libs: []', `libs: [${join(dir, 'missing-libc6.deb')}]`));
  await writeFile(join(git, 'gridforge.yaml'), config({ images: [] }));
  await gitc('init', '-q', '-b', 'main');
  await gitc('add', 'packages.txt', 'gridforge.yaml');
  await gitc('commit', '-q', '-m', 'release candidate');
});

afterAll(async () => {
  await removeDir(dir);
});

describe('release --from-git', () => {
  it('refuses an untagged HEAD with a clear message and changes nothing', async () => {
    const before = await revisionOf(repo);
    const r = await gridforge(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--cwd', git]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/HEAD \([0-9a-f]{12}\) is not tagged, so there is no version to release/);
    expect(r.stderr).toMatch(/git tag 2\.1\.4-1 && git push --tags/);
    expect(await revisionOf(repo)).toBe(before);
  });

  it('refuses a tag that is not a JAliEn version', async () => {
    await gitc('tag', 'v1.0');
    const r = await gridforge(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--cwd', git]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tag\(s\) on HEAD \(v1\.0\) are not JAliEn versions/);
    await gitc('tag', '-d', 'v1.0');
  });

  it('--dry-run prints the whole plan for the tag and changes nothing', async () => {
    await gitc('tag', '2.1.4-1');
    const before = await revisionOf(repo);
    const manifest = await readFile(join(repo, '.cvmfspublished'));
    const r = await gridforge(['--config', join(git, 'gridforge-plan.yaml'), 'release', '--from-git', '--dry-run', '--cwd', git, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({ dryRun: true, version: '2.1.4-1', tag: '2.1.4-1', arch: 'el9-x86_64' });
    expect(plan.steps.map((s: any) => s.step)).toEqual(['image', 'image', 'sandbox', 'java32', 'jalien']);
    expect(plan.steps[0].target).toBe('gfrel/job:debian-job-2.1.4-1');
    expect(plan.steps[1].target).toBe('gfrel/vobox-slurm:debian-slurm-2.1.4-1');
    expect(plan.steps[2].target).toBe('containers/fs/singularity/job-2.1.4-1');
    expect(plan.steps[4].target).toContain('el9-x86_64/Packages/JAliEn/2.1.4-1');
    const human = await gridforge(['--config', join(git, 'gridforge-plan.yaml'), 'release', '--from-git', '--dry-run', '--cwd', git]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/plan \(dry run, nothing changed\): version 2\.1\.4-1/);
    // Validation happens in the dry run too: a configured runtime that does not exist is refused.
    const bad = await gridforge(['--config', join(git, 'gridforge-badjava.yaml'), 'release', '--from-git', '--dry-run', '--cwd', git]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/release\.java32\.jdk: .*missing-jdk\.deb does not exist/);
    expect(await revisionOf(repo)).toBe(before);
    expect((await readFile(join(repo, '.cvmfspublished'))).equals(manifest)).toBe(true);
    const images = await execa('docker', ['images', '-q', 'gfrel/job']);
    expect(images.stdout.trim()).toBe('');
  });

  it('publishes JAliEn as the new default and tags the revision with the version; a re-run is a no-op', async () => {
    const before = await revisionOf(repo);
    const r = await gridforge(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--cwd', git, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results.at(-1)).toMatchObject({ step: 'jalien', status: 'published', default: '2.1.4-1' });
    expect(await revisionOf(repo)).toBe(before + 1);
    const tags = await gridforge(['repo', 'tags', repo, '--json']);
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout).toContain('"2.1.4-1"');
    const co = join(dir, 'co');
    await checkoutRepo(repo, co);
    const m = await moduleShell(`module use ${co}/el9-x86_64/Modules/modulefiles\nmodule load JAliEn\necho "LOADED=$LOADEDMODULES"`);
    expect(m.stdout).toContain('LOADED=JAliEn/2.1.4-1');

    const again = await gridforge(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--cwd', git, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).results.at(-1)).toMatchObject({ step: 'jalien', status: 'unchanged' });
    expect(await revisionOf(repo)).toBe(before + 1);
  });
});
