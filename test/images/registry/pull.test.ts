/**
 * `image flatten` and `image sandbox` from `docker://` references (images/registry/pull.ts via
 * images/layer/image-tree.ts) against a real registry (Debian docker-registry on loopback, plain
 * HTTP) holding fixture images pushed by skopeo (a two-platform OCI index: amd64 with a gzip and a
 * plain layer, arm64 with one layer). Oracle: the same images flattened from the local OCI
 * layouts give the same image digest (the flattener is deterministic), and sandboxes from the
 * registry equal sandboxes from the layouts file for file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffTrees, treeFromDir } from '../flatten/helpers.ts';
import { gf, makeFixture, makeTwinLayerLayout, skopeoPush, startRegistry, type Fixture, type Registry } from './helpers.ts';

let reg: Registry;
let work: string;
let fx: Fixture;
const local: Record<string, string> = {};

async function flattenDigest(source: string, extra: string[] = []): Promise<string> {
  const out = path.join(work, `oci-${Math.random().toString(36).slice(2)}`);
  const r = await gf(['image', 'flatten', source, '--oci', out, '--json', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  fs.rmSync(out, { recursive: true, force: true });
  return JSON.parse(r.stdout).digest;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'gfreg-pull-'));
  fx = makeFixture(work);
  reg = await startRegistry();
  await skopeoPush(reg, fx.multi, 'multi', 'fixture/multi:1');
  local.amd64 = await flattenDigest(fx.amd64);
  local.arm64 = await flattenDigest(fx.arm64);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('docker:// sources', () => {
  it('flatten by tag picks linux/amd64 from the index and equals the flattened local layout', async () => {
    expect(local.amd64).not.toBe(local.arm64);
    expect(await flattenDigest(`docker://${reg.host}/fixture/multi:1`)).toBe(local.amd64);
  }, 30_000);

  it('gzip layers inflated while they download: an image holding one layer gzipped and plain equals its local layout', async () => {
    const twin = makeTwinLayerLayout(work);
    await skopeoPush(reg, twin, 'twin', 'fixture/twin:1');
    expect(await flattenDigest(`docker://${reg.host}/fixture/twin:1`)).toBe(await flattenDigest(twin));
  }, 30_000);

  it('--platform linux/arm64 picks the arm64 image', async () => {
    expect(await flattenDigest(`docker://${reg.host}/fixture/multi:1`, ['--platform', 'linux/arm64'])).toBe(local.arm64);
  }, 30_000);

  it('by digest: of the index, and of the arm64 manifest itself', async () => {
    expect(await flattenDigest(`docker://${reg.host}/fixture/multi@${fx.indexDigest}`)).toBe(local.amd64);
    expect(await flattenDigest(`docker://${reg.host}/fixture/multi@${fx.arm64ManifestDigest}`)).toBe(local.arm64);
  }, 30_000);

  it('the default tag of the flattened image names the registry reference', async () => {
    const out = path.join(work, 'named');
    const r = await gf(['image', 'flatten', `docker://${reg.host}/fixture/multi:1`, '--oci', out, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).ref).toBe(`${reg.host}/fixture/multi:1-flat`);
  }, 30_000);

  it('image sandbox from the registry equals the sandbox from the local layout', async () => {
    const a = path.join(work, 'sb-registry');
    const b = path.join(work, 'sb-local');
    const ra = await gf(['image', 'sandbox', `docker://${reg.host}/fixture/multi:1`, '--output', a]);
    expect(ra.stderr).toBe('');
    expect(ra.code).toBe(0);
    expect((await gf(['image', 'sandbox', fx.amd64, '--output', b])).code).toBe(0);
    const ta = treeFromDir(a);
    const tb = treeFromDir(b);
    // the runscript and labels name the source; everything else is identical
    const ignore = (p: string) => p.startsWith('.singularity.d/');
    expect(diffTrees(tb, ta, { ignore, groups: true })).toEqual([]);
    expect(fs.readFileSync(path.join(a, 'opt/new'), 'utf8')).toBe('layer two\n');
    expect(fs.existsSync(path.join(a, 'opt/gone'))).toBe(false);
  }, 60_000);

  it('image sandbox --repo from the registry: amd64 and arm64 side by side in one repository', async () => {
    const repo = path.join(work, 'repo');
    expect((await gf(['repo', 'init', repo, '--name', 'registry.example.org'])).code).toBe(0);
    for (const [platform, name] of [['linux/amd64', 'fixture'], ['linux/arm64', 'fixture-aarch64']]) {
      const r = await gf(['image', 'sandbox', `docker://${reg.host}/fixture/multi:1`, '--platform', platform, '--repo', repo, '--path', `containers/fs/singularity/${name}`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const cat = async (p: string) => (await gf(['repo', 'cat', repo, p])).stdout;
    expect(await cat('containers/fs/singularity/fixture/etc/os-release')).toBe('ID=gridforge-fixture');
    expect(await cat('containers/fs/singularity/fixture-aarch64/etc/os-release')).toBe('ID=gridforge-fixture-arm64');
  }, 60_000);

  it('a platform the index lacks is exit 2 naming the ones it has; --platform on a local source is exit 2', async () => {
    const r = await gf(['image', 'flatten', `docker://${reg.host}/fixture/multi:1`, '--platform', 'linux/s390x', '--oci', path.join(work, 'none')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no image for linux/s390x');
    expect(r.stderr).toContain('linux/amd64, linux/arm64/v8');
    expect(fs.existsSync(path.join(work, 'none'))).toBe(false);
    const l = await gf(['image', 'flatten', fx.amd64, '--platform', 'linux/arm64', '--oci', path.join(work, 'none')]);
    expect(l.code).toBe(2);
    expect(l.stderr).toContain('--platform applies to docker:// sources only');
  }, 30_000);
});
