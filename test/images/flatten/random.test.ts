/**
 * Property-style: randomised layer stacks (seeded; the seed is printed, set GF_FLATTEN_SEED to
 * replay) with files, dirs, symlinks, hardlinks, whiteouts, opaque markers placed before or after
 * same-layer entries, type changes and odd modes/owners. Oracle: the real engine (`docker load`
 * of the handmade archive + `docker export`). Checked: flattened layer and sandbox.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive } from '../../../images/flatten/index.ts';
import { writeSandbox } from '../../../images/sandbox/index.ts';
import { indexTarFile } from '../../../images/archive/tar-index.ts';
import { diffTrees, exportTree, layerTar, legacyArchive, PREFIX, removeImages, treeFromDir, treeFromTarFile, type E } from './helpers.ts';

const BASE_SEED = Number(process.env.GF_FLATTEN_SEED ?? Date.now() % 1_000_000);
const RUNS = Number(process.env.GF_FLATTEN_RUNS ?? 8);
let work: string;
const tags: string[] = [];
const kinds = { whiteout: 0, opaque: 0, hardlink: 0, symlink: 0, file: 0 };

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'dir' | 'file' | 'symlink';

/** Generate layers that are valid for the engine too (hardlinks within a layer, no writes through symlinks). */
export function generate(seed: number): E[][] {
  const r = rng(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const names = ['a', 'b', 'c', 'dd', 'ü'];
  const state = new Map<string, Kind>();
  const dirAttrs = new Map<string, { mode: number; uid: number }>();
  const layers: E[][] = [];
  const nLayers = 2 + Math.floor(r() * 4);
  for (let li = 0; li < nLayers; li++) {
    const entries: E[] = [];
    const touched = new Set<string>();
    const layerFiles: string[] = [];
    const opaques: { index: number; e: E }[] = [];
    const isTouchedBelow = (p: string) => [...touched].some((t) => t === p || t.startsWith(`${p}/`));
    const removeTree = (p: string) => { for (const k of [...state.keys()]) if (k === p || k.startsWith(`${p}/`)) state.delete(k); };
    // Like the engine's own layers: every parent directory is in the layer, with its attributes
    // (overlay-based engines take a directory's attributes from the newest layer holding it).
    const ensureParents = (p: string) => {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) {
        const q = parts.slice(0, i).join('/');
        if (touched.has(q)) {
          if (state.get(q) === 'dir') continue;
          return false;
        }
        if (state.get(q) !== 'dir') {
          removeTree(q);
          state.set(q, 'dir');
          dirAttrs.set(q, { mode: 0o755, uid: 0 });
        }
        const a = dirAttrs.get(q)!;
        touched.add(q);
        entries.push({ path: `${q}/`, type: 'dir', mode: a.mode, uid: a.uid, gid: a.uid });
      }
      return true;
    };
    const nOps = 4 + Math.floor(r() * 12);
    for (let k = 0; k < nOps; k++) {
      const op = pick(['file', 'file', 'dir', 'symlink', 'hardlink', 'whiteout', 'opaque', 'file']);
      const depth = 1 + Math.floor(r() * 3);
      const p = Array.from({ length: depth }, () => pick(names)).join('/');
      const lower = [...state.keys()].filter((q) => !isTouchedBelow(q) && ![...touched].some((t) => q.startsWith(`${t}/`)));
      if (op === 'whiteout' || op === 'opaque') {
        const cands = lower.filter((q) => op === 'whiteout' || state.get(q) === 'dir');
        if (!cands.length) continue;
        const q = pick(cands);
        if (!ensureParents(q)) continue;
        if (op === 'whiteout') {
          const slash = q.lastIndexOf('/');
          entries.push({ path: slash === -1 ? `.wh.${q}` : `${q.slice(0, slash)}/.wh.${q.slice(slash + 1)}`, data: '' });
          removeTree(q);
        } else {
          const a = dirAttrs.get(q)!;
          entries.push({ path: `${q}/`, type: 'dir', mode: a.mode, uid: a.uid, gid: a.uid });
          for (const key of [...state.keys()]) if (key.startsWith(`${q}/`) && !touched.has(key)) state.delete(key);
          opaques.push({ index: entries.length, e: { path: `${q}/.wh..wh..opq`, data: '' } });
        }
        touched.add(q);
        continue;
      }
      if (isTouchedBelow(p) || [...touched].some((t) => p.startsWith(`${t}/`) && state.get(t) !== 'dir')) continue;
      if (!ensureParents(p)) continue;
      const mode = (m: number[]) => pick(m);
      const uid = pick([0, 0, 1, 1000, 65534, 123456]);
      if (op === 'dir') {
        if (state.get(p) !== 'dir') removeTree(p);
        state.set(p, 'dir');
        const m = mode([0o755, 0o700, 0o1777, 0o2750, 0o555]);
        dirAttrs.set(p, { mode: m, uid });
        entries.push({ path: `${p}/`, type: 'dir', mode: m, uid, gid: uid });
      } else if (op === 'file') {
        removeTree(p);
        state.set(p, 'file');
        layerFiles.push(p);
        entries.push({ path: p, data: `content of ${p} in layer ${li} ${r()}`.repeat(1 + Math.floor(r() * 40)), mode: mode([0o644, 0o600, 0o755, 0o4755, 0o2755, 0o444, 0o000]), uid, gid: pick([0, 5, 100]) });
      } else if (op === 'symlink') {
        removeTree(p);
        state.set(p, 'symlink');
        entries.push({ path: p, type: 'symlink', link: pick(['a', '../b', '/c/dd', '/nonexistent', 'a/b/../c', '/']) });
      } else if (op === 'hardlink') {
        const targets = layerFiles.filter((f) => state.get(f) === 'file' && f !== p);
        if (!targets.length) continue;
        removeTree(p);
        state.set(p, 'file');
        entries.push({ path: p, type: 'hardlink', link: pick(targets), mode: mode([0o644, 0o755]), uid, gid: 0 });
      }
      touched.add(p);
    }
    // opaque markers: at their position or moved to the end of the layer (after same-layer entries)
    for (const o of opaques.reverse()) entries.splice(r() < 0.5 ? o.index : entries.length, 0, o.e);
    layers.push(entries);
  }
  return layers;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-rand-`));
  console.log(`random layer stacks: base seed ${BASE_SEED} (replay with GF_FLATTEN_SEED=${BASE_SEED})`);
});

afterAll(async () => {
  await removeImages(tags);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('randomised layer stacks vs the engine', () => {
  for (let i = 0; i < RUNS; i++) {
    it(`stack #${i}`, async () => {
      const seed = BASE_SEED + i;
      const gen = generate(seed);
      for (const e of gen.flat()) {
        const base = e.path.split('/').filter(Boolean).pop() ?? '';
        if (base === '.wh..wh..opq') kinds.opaque++;
        else if (base.startsWith('.wh.')) kinds.whiteout++;
        else if (e.type === 'hardlink' || e.type === 'symlink') kinds[e.type]++;
        else if (!e.type) kinds.file++;
      }
      const layers = gen.map(layerTar);
      const tag = `${PREFIX}-rand:${process.pid}-${i}`;
      tags.push(tag);
      const src = path.join(work, `rand-${i}.tar`);
      fs.writeFileSync(src, legacyArchive({ layers, tag }));
      await execa('docker', ['load', '-i', src]);
      const oracle = await exportTree(tag);
      const out = path.join(work, `flat-${i}.tar`);
      await flattenToArchive({ source: src, output: out });
      const idx = indexTarFile(out);
      const mm = idx.get('manifest.json')!;
      const layer = idx.get(JSON.parse(fs.readFileSync(out).subarray(mm.offset, mm.offset + mm.size).toString())[0].Layers[0])!;
      const flat = await treeFromTarFile(out, layer.offset, layer.size);
      const missingEtc = (t: Map<string, unknown>) => (p: string) => p === 'etc' && !t.has('etc');
      expect(diffTrees(oracle, flat, { groups: true, ignore: missingEtc(flat) }), `seed ${seed}`).toEqual([]);
      const sb = path.join(work, `sb-${i}`);
      const res = await writeSandbox({ source: src, output: sb });
      const sbt = treeFromDir(sb);
      const added = new Set(res.added);
      expect(diffTrees(oracle, sbt, {
        groups: true,
        ignore: (p) => missingEtc(sbt)(p) || ['tmp', 'var', 'var/tmp', 'root', 'home', 'srv', 'cvmfs', 'workdir'].includes(p) && !oracle.has(p),
        expect: (_p, e) => (e.type === 'dir' ? { ...e, mode: e.mode | 0o700 } : e.type === 'file' ? { ...e, mode: (e.mode & ~0o6000) | 0o600 } : e), // setuid/setgid dropped (images/sandbox/write-tree.ts)
        extraAllowed: (p) => added.has(p) || p.startsWith('.singularity.d'),
      }), `seed ${seed}`).toEqual([]);
      fs.rmSync(sb, { recursive: true });
    });
  }
  it('the generated stacks exercised every kind of entry', () => {
    console.log('generated entries:', kinds);
    for (const [k, v] of Object.entries(kinds)) expect(v, k).toBeGreaterThan(0);
  });
});
