/**
 * The engine layer-store reader (images/archive/engine-store.ts) against `docker save`: the same
 * image read both ways flattens to byte-identical archives; GRIDFORGE_ENGINE_READ=save forces the
 * save path; a layer whose directory in the engine has a symlinked parent (the engine's chrooted
 * unpack wrote `a/hostname` through the symlink `a -> /etc`) is never read through that symlink,
 * so no host file can reach the output; a layer damaged inside the engine fails its DiffID check,
 * which runs in the background, before any output or image is made visible.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive, flattenToEngine } from '../../../images/flatten/index.ts';
import { inspectImageId } from '../../../images/archive/engine.ts';
import { openEngineStore, StoreUnavailable } from '../../../images/archive/engine-store.ts';
import { UsageError } from '../../../base/errors.ts';
import { dockerBuild, layerTar, legacyArchive, PREFIX, removeImages } from './helpers.ts';

const TAG = `${PREFIX}-store:${process.pid}`;
const EVIL = `${PREFIX}-store-evil:${process.pid}`;
const DAMAGED = `${PREFIX}-store-damaged:${process.pid}`;

const DOCKERFILE = `
FROM gridforge/base:debian-bookworm
RUN mkdir -p /s/opq/sub /s/hl && echo a > /s/gone && echo o > /s/opq/sub/o && echo h > /s/hl/h && ln /s/hl/h /s/hl/h2
RUN rm /s/gone && rm -r /s/opq && mkdir -p /s/opq && echo n > /s/opq/n && echo more >> /s/hl/h \\
 && echo u > "/s/ünïcödé name" && ln -s /etc/hostname /s/abs && mkfifo /s/fifo && chmod 4755 /s/hl/h
`;

let work: string;

async function withEnv<T>(key: string, value: string, fn: () => Promise<T>): Promise<T> {
  const old = process.env[key];
  process.env[key] = value;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env[key];
    else process.env[key] = old;
  }
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-store-`));
  await dockerBuild(TAG, DOCKERFILE);
}, 600_000);

afterAll(async () => {
  await removeImages([TAG, EVIL, DAMAGED, `${DAMAGED}-flat`]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('engine layer store', () => {
  it('reads the image from the layer store, and flattens to the same bytes as through docker save', async () => {
    const id = (await inspectImageId(TAG))!;
    const src = await openEngineStore(TAG, id);
    expect(src.configDigest).toBe(id);
    expect(src.layers.length).toBeGreaterThan(2);
    for (const l of src.layers) expect(l.label).toContain('engine layer store');
    await expect(src.verified).resolves.toBeUndefined(); // DiffIDs recomputed over the rebuilt streams
    await src.close();
    const viaStore = path.join(work, 'store.tar');
    const viaSave = path.join(work, 'save.tar');
    const a = await flattenToArchive({ source: TAG, output: viaStore });
    const b = await withEnv('GRIDFORGE_ENGINE_READ', 'save', () => flattenToArchive({ source: TAG, output: viaSave }));
    expect(a.diffId).toBe(b.diffId);
    expect(fs.readFileSync(viaStore).equals(fs.readFileSync(viaSave))).toBe(true);
  });

  it('GRIDFORGE_ENGINE_READ=save turns the store reader off', async () => {
    const id = (await inspectImageId(TAG))!;
    await withEnv('GRIDFORGE_ENGINE_READ', 'save', async () => {
      await expect(openEngineStore(TAG, id)).rejects.toBeInstanceOf(StoreUnavailable);
    });
  });

  it('never reads a layer file through a symlinked parent in the engine (no host file reaches the output)', async () => {
    // `a -> /etc`, then `a/hostname`: the engine's chrooted unpack writes it to <diff>/etc/hostname,
    // while its tar-split still says a/hostname, which on the host resolves to the host's /etc/hostname.
    const layer = layerTar([
      { path: 'a', type: 'symlink', link: '/etc' },
      { path: 'etc/', type: 'dir' },
      { path: 'a/hostname', data: 'image-content-not-host\n' },
    ]);
    const archive = path.join(work, 'evil.tar');
    fs.writeFileSync(archive, legacyArchive({ layers: [layer], tag: EVIL }));
    const load = await execa('docker', ['load', '-i', archive], { reject: false });
    if (load.exitCode !== 0) {
      // an engine that refuses such a layer at load time is safe too
      expect(load.stderr).not.toBe('');
      return;
    }
    const id = (await inspectImageId(EVIL))!;
    await expect(openEngineStore(EVIL, id)).rejects.toThrow(/below a symlink/);
    // through `gridforge image flatten` it fails as a whole (docker save's own rebuild of that
    // layer does not match its DiffID) and leaves nothing
    const out = path.join(work, 'evil-flat.tar');
    const r = await flattenToArchive({ source: EVIL, output: out }).then(() => 'written', (e: Error) => e.message);
    if (r === 'written') {
      // if the engine rebuilt it faithfully, the content must be the layer's, never the host's
      const text = fs.readFileSync(out).toString('latin1');
      expect(text).not.toContain(fs.readFileSync('/etc/hostname', 'latin1').trim() + '\n\0');
    } else {
      expect(fs.existsSync(out)).toBe(false);
    }
  });

  it('a layer damaged in the engine fails its DiffID check: no archive, no engine image, the layer named', async () => {
    await dockerBuild(DAMAGED, 'FROM gridforge/base:debian-bookworm\nRUN mkdir /v && echo original-content > /v/victim\n');
    const upper = (await execa('docker', ['image', 'inspect', '--format', '{{.GraphDriver.Data.UpperDir}}', DAMAGED])).stdout.trim();
    const victim = path.join(upper, 'v', 'victim');
    fs.writeFileSync(victim, fs.readFileSync(victim, 'utf8').toUpperCase()); // same length, other bytes
    const out = path.join(work, 'damaged.tar');
    await expect(flattenToArchive({ source: DAMAGED, output: out })).rejects.toSatisfy((e: unknown) => e instanceof UsageError && e.where!.includes('engine layer store') && e.message.includes('DiffID mismatch'));
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(work).filter((f) => f.includes('damaged'))).toEqual([]);
    // into the engine: the import overlaps the check, and no tagged image is left
    await expect(flattenToEngine({ source: DAMAGED, tag: `${DAMAGED}-flat` })).rejects.toMatchObject({ message: expect.stringContaining('DiffID mismatch') });
    expect((await execa('docker', ['image', 'inspect', `${DAMAGED}-flat`], { reject: false })).exitCode).not.toBe(0);
    const leftovers = (await execa('docker', ['images', '--format', '{{.Repository}}', 'gridforge-flatten-tmp'])).stdout.trim();
    expect(leftovers).toBe('');
  });
});
