/**
 * `gridforge image sync <wishlist.yaml> --repo` (release/image-sync/) against a real registry
 * (docker-registry on loopback) and a real repository: tag globs and platforms resolve to
 * digest-addressed trees with tag links (arm64 beside amd64, `-aarch64` links), `--dry-run` writes
 * nothing, a resync with nothing changed publishes no revision, images dropped from the list are
 * unlinked and their trees removed only after the grace period; a bad wish list is exit 2 at its
 * file:line. The repository is read back with the repository reader (signatures checked).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepository } from '../../../cvmfs-publish/index.ts';
import { gf, makeFixture, skopeoPush, startRegistry, type Fixture, type Registry } from './helpers.ts';

let reg: Registry;
let work: string;
let fx: Fixture;
let repo: string;
let wish: string;
const SING = 'containers/fs/singularity';

function writeWish(images: { image: string; tags: string[]; platforms?: string[] }[]): void {
  fs.writeFileSync(wish, `# test wish list\nplatforms: [linux/amd64, linux/arm64]\nimages:\n${images.map((i) => `  - image: ${i.image}\n    tags: ${JSON.stringify(i.tags)}\n${i.platforms ? `    platforms: ${JSON.stringify(i.platforms)}\n` : ''}`).join('')}`);
}

async function revision(): Promise<number> {
  return (await openRepository(repo)).revision;
}

async function sync(extra: string[] = []) {
  const r = await gf(['image', 'sync', wish, '--repo', repo, '--json', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-sync-'));
  fx = makeFixture(work);
  reg = await startRegistry();
  await skopeoPush(reg, fx.multi, 'multi', 'fixture/multi:1');
  await skopeoPush(reg, fx.multi, 'multi', 'fixture/multi:2a');
  await skopeoPush(reg, fx.amd64, 'amd64', 'fixture/single:1');
  repo = path.join(work, 'repo');
  expect((await gf(['repo', 'init', repo, '--name', 'sync.example.org'])).code).toBe(0);
  wish = path.join(work, 'wishlist.yaml');
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('image sync', () => {
  const amdTree = () => `${SING}/sha256-${fx.amd64ManifestDigest.slice(7)}`;
  const armTree = () => `${SING}/sha256-${fx.arm64ManifestDigest.slice(7)}`;

  it('--dry-run resolves tags (globs) and platforms against the registry, prints the plan and writes nothing', async () => {
    writeWish([{ image: `docker://${reg.host}/fixture/multi`, tags: ['1', '2*'] }, { image: `docker://${reg.host}/fixture/single`, tags: ['1'] }]);
    const before = await revision();
    const r = await sync(['--dry-run']);
    expect(r.dryRun).toBe(true);
    expect(r.plan.write.map((t: { path: string }) => t.path).sort()).toEqual([amdTree(), armTree()].sort());
    expect(r.plan.link.map((l: { path: string }) => l.path).sort()).toEqual([`${SING}/multi-1`, `${SING}/multi-1-aarch64`, `${SING}/multi-2a`, `${SING}/multi-2a-aarch64`, `${SING}/single-1`]);
    expect(r.plan.missing).toEqual([{ image: `docker://${reg.host}/fixture/single`, tag: '1', platform: 'linux/arm64' }]);
    expect(await revision()).toBe(before);
    const text = await gf(['image', 'sync', wish, '--repo', repo, '--dry-run']);
    expect(text.stdout).toContain(`link    ${SING}/multi-1-aarch64 -> sha256-${fx.arm64ManifestDigest.slice(7)}`);
    expect(text.stdout).toContain('dry run: nothing written');
  }, 60_000);

  it('writes each digest once, links every tag and platform; arm64 lands beside amd64', async () => {
    const r = await sync();
    expect(r.written).toBe(2);
    const reader = await openRepository(repo);
    expect((await reader.readFile(`${amdTree()}/etc/os-release`)).toString()).toBe('ID=gridforge-fixture\n');
    expect((await reader.readFile(`${armTree()}/etc/os-release`)).toString()).toBe('ID=gridforge-fixture-arm64\n');
    expect((await reader.stat(`${SING}/multi-2a`))?.target).toBe(`sha256-${fx.amd64ManifestDigest.slice(7)}`);
    expect((await reader.stat(`${SING}/multi-1-aarch64`))?.target).toBe(`sha256-${fx.arm64ManifestDigest.slice(7)}`);
    expect((await reader.stat(`${SING}/single-1`))?.target).toBe(`sha256-${fx.amd64ManifestDigest.slice(7)}`);
    expect((await reader.stat(`${amdTree()}/.singularity.d`))?.type).toBe('dir');
  }, 90_000);

  it('a resync with nothing changed publishes no revision', async () => {
    const before = await revision();
    const t0 = Date.now();
    const r = await sync();
    expect(r.plan.changed).toBe(false);
    expect(r.plan.unchanged).toHaveLength(2);
    expect(r.revision).toBeUndefined();
    expect(await revision()).toBe(before);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  it('images dropped from the list are unlinked; their trees stay for the grace period, then go', async () => {
    writeWish([{ image: `docker://${reg.host}/fixture/single`, tags: ['1'], platforms: ['linux/amd64'] }]);
    const r = await sync();
    expect(r.plan.unlink.map((l: { path: string }) => l.path).sort()).toEqual([`${SING}/multi-1`, `${SING}/multi-1-aarch64`, `${SING}/multi-2a`, `${SING}/multi-2a-aarch64`]);
    expect(r.plan.markUnlisted).toEqual([armTree()]);
    let reader = await openRepository(repo);
    expect(await reader.stat(`${SING}/multi-1`)).toBeUndefined();
    expect((await reader.stat(armTree()))?.type).toBe('dir'); // within the 2-day grace period
    const waiting = await sync();
    expect(waiting.plan.changed).toBe(false);
    expect(waiting.plan.waiting.map((w: { path: string }) => w.path)).toEqual([armTree()]);
    const gone = await sync(['--grace', '0']);
    expect(gone.plan.remove.map((x: { path: string }) => x.path)).toEqual([armTree()]);
    reader = await openRepository(repo);
    expect(await reader.stat(armTree())).toBeUndefined();
    expect((await reader.stat(amdTree()))?.type).toBe('dir');
    expect((await reader.stat(`${SING}/single-1`))?.target).toBe(`sha256-${fx.amd64ManifestDigest.slice(7)}`);
  }, 60_000);

  it('a bad wish list is exit 2 at its file:line; an unknown tag is exit 2; the repository is unchanged', async () => {
    const before = await revision();
    fs.writeFileSync(wish, `images:\n  - image: docker://${reg.host}/fixture/single\n    tags: ["1"]\n    colour: blue\n`);
    let r = await gf(['image', 'sync', wish, '--repo', repo]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${wish}:`);
    expect(r.stderr).toContain('colour');
    writeWish([{ image: `docker://${reg.host}/fixture/single`, tags: ['nope'] }]);
    r = await gf(['image', 'sync', wish, '--repo', repo]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('has no manifest nope');
    expect(await revision()).toBe(before);
  }, 30_000);
});
