/**
 * The CLI contract of `gridforge image flatten` / `image sandbox`: default tag (`-flat`), the ref
 * as the last stdout line, --json, --output / --oci, exit codes 0 / 2 with the fault named.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { layerTar, legacyArchive, PREFIX, removeImages } from './helpers.ts';

const CLI = path.resolve('scripts/bin/gridforge.mjs');
const TAG = `${PREFIX}-cli:${process.pid}`;
let work: string;
let archive: string;

const gf = (...args: string[]) => execa(process.execPath, [CLI, ...args], { reject: false });

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-cli-`));
  archive = path.join(work, 'img.tar');
  fs.writeFileSync(archive, legacyArchive({
    tag: TAG,
    layers: [layerTar([{ path: 'bin/', type: 'dir' }, { path: 'bin/a', data: 'a' }]), layerTar([{ path: 'bin/.wh.a' }, { path: 'bin/b', data: 'b' }])],
    config: { Env: ['PATH=/bin', 'X=1'], Cmd: ['/bin/b'], Labels: { k: 'v' } },
  }));
  await execa('docker', ['load', '-i', archive]);
});

afterAll(async () => {
  await removeImages([TAG, `${TAG}-flat`, `${PREFIX}-cli:named-${process.pid}`]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('gridforge image flatten / sandbox', () => {
  it('flattens an engine image under <tag>-flat and prints the ref last', async () => {
    const r = await gf('image', 'flatten', TAG);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe(`${TAG}-flat`);
    expect(r.stderr).toMatch(/layer 2\/2 verified/);
    const layers = (await execa('docker', ['image', 'inspect', '--format', '{{len .RootFS.Layers}} {{index .Config.Labels "k"}}', `${TAG}-flat`])).stdout;
    expect(layers).toBe('1 v');
  });

  it('--json, --tag and --output', async () => {
    const out = path.join(work, 'flat.tar');
    const r = await gf('image', 'flatten', archive, '--output', out, '--tag', `${PREFIX}-cli:named-${process.pid}`, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ref: `${PREFIX}-cli:named-${process.pid}`, sourceLayers: 2, output: out });
    expect(j.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const load = await execa('docker', ['load', '-i', out]);
    expect(load.stdout).toContain(`${PREFIX}-cli:named-${process.pid}`);
  });

  it('--oci writes a layout directory', async () => {
    const out = path.join(work, 'oci');
    const r = await gf('image', 'flatten', archive, '--oci', out, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')).manifests[0].annotations['io.containerd.image.name']).toBe(`${TAG}-flat`);
  });

  it('bad usage and bad input exit 2 naming the fault', async () => {
    const both = await gf('image', 'flatten', archive, '--output', 'a.tar', '--oci', 'b');
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('mutually exclusive');
    const missing = await gf('image', 'flatten', `${PREFIX}-no-such-image:1`);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`${PREFIX}-no-such-image:1`);
    const notTar = path.join(work, 'not.tar');
    fs.writeFileSync(notTar, 'hello, not a tar archive'.repeat(100));
    const bad = await gf('image', 'flatten', notTar, '--output', path.join(work, 'x.tar'));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain(notTar);
    expect(fs.existsSync(path.join(work, 'x.tar'))).toBe(false);
    const noOut = await gf('image', 'sandbox', archive);
    expect(noOut.exitCode).toBe(2);
    const badBind = await gf('image', 'sandbox', archive, '--output', path.join(work, 'sb'), '--bind-point', 'relative/path');
    expect(badBind.exitCode).toBe(2);
    expect(badBind.stderr).toContain('--bind-point');
    expect(fs.existsSync(path.join(work, 'sb'))).toBe(false);
    const notSandbox = path.join(work, 'precious');
    fs.mkdirSync(notSandbox);
    fs.writeFileSync(path.join(notSandbox, 'keep'), 'x');
    const clobber = await gf('image', 'sandbox', archive, '--output', notSandbox);
    expect(clobber.exitCode).toBe(2);
    expect(fs.readFileSync(path.join(notSandbox, 'keep'), 'utf8')).toBe('x');
  });

  it('sandbox --json reports additions and replaces an earlier sandbox', async () => {
    const out = path.join(work, 'box');
    for (let i = 0; i < 2; i++) {
      const r = await gf('image', 'sandbox', archive, '--output', out, '--json');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).added).toContain('cvmfs');
    }
    expect(fs.readFileSync(path.join(out, 'bin/b'), 'utf8')).toBe('b');
    expect(fs.existsSync(path.join(out, 'bin/a'))).toBe(false);
    expect(fs.readdirSync(work).filter((f) => f.includes('gridforge-tmp'))).toEqual([]);
  });
});
