/**
 * Malicious layers: each is refused with the offending entry named (exit code 2), nothing outside
 * the output is touched, and no partial output (or temporary sibling) is left, for both the
 * flattened archive and the sandbox writer. Plus the legitimate look-alikes that must work:
 * absolute symlinks in parents resolve inside the root, a final symlink is replaced, not followed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenToArchive } from '../../../images/flatten/index.ts';
import { writeSandbox } from '../../../images/sandbox/index.ts';
import { UsageError } from '../../../base/errors.ts';
import { layerTar, legacyArchive, PREFIX, treeFromDir, type E } from './helpers.ts';

let work: string;
let outside: string; // a directory next to the outputs that must never change
const EVIL = `${PREFIX}-evil-${process.pid}`;

function snapshot(dir: string): string {
  return JSON.stringify([...treeFromDir(dir)].sort());
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-mal-`));
  outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'sentinel'), 'untouched');
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(path.join('/tmp', EVIL), { recursive: true, force: true });
});

const base: E[] = [{ path: 'etc/', type: 'dir' }, { path: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' }, { path: 'sub/', type: 'dir' }];

// `../` counts are chosen to climb from <work>/.sandbox-tmp/<entry> into <work>/outside
const CASES: { name: string; layers: E[][]; entry: RegExp; message: RegExp }[] = [
  { name: "'../' path", layers: [base, [{ path: '../outside/pwned', data: 'x' }]], entry: /\.\.\/outside\/pwned/, message: /contains '\.\.'/ },
  { name: "'..' in the middle of a path", layers: [base, [{ path: 'sub/../../outside/pwned', data: 'x' }]], entry: /sub\/\.\.\/\.\.\/outside\/pwned/, message: /contains '\.\.'/ },
  { name: 'absolute path', layers: [base, [{ path: `/tmp/${EVIL}/pwned`, data: 'x' }]], entry: new RegExp(`/tmp/${EVIL}/pwned`), message: /absolute entry path/ },
  { name: 'symlinked parent pointing outside (lower layer)', layers: [[...base, { path: 'esc', type: 'symlink', link: '../../../../../../../../../../tmp' }], [{ path: `esc/${EVIL}`, data: 'x' }]], entry: new RegExp(`esc/${EVIL}`), message: /points outside the image root/ },
  { name: 'symlinked parent pointing outside (same layer)', layers: [[...base, { path: 'sub/esc', type: 'symlink', link: '../../outside' }, { path: 'sub/esc/pwned', data: 'x' }]], entry: /sub\/esc\/pwned/, message: /points outside/ },
  { name: 'hardlink to outside via ..', layers: [[...base, { path: 'hl', type: 'hardlink', link: '../outside/sentinel' }]], entry: /: hl$/, message: /hardlink target .* contains '\.\.'/ },
  { name: 'hardlink to a file that is not in the image', layers: [[...base, { path: 'hl', type: 'hardlink', link: '/etc/shadow' }]], entry: /: hl$/, message: /does not exist inside the image/ },
  { name: 'root turned into a symlink', layers: [base, [{ path: './', type: 'symlink', link: '/tmp' }]], entry: /: \.\/$/, message: /turn the image root into a symlink/ },
  { name: 'root turned into a file', layers: [base, [{ path: '.', type: 'file', data: 'x' }]], entry: /: \.$/, message: /turn the image root into a file/ },
  { name: 'whiteout escaping its directory', layers: [base, [{ path: 'sub/.wh..', type: 'file' }]], entry: /sub\/\.wh\.\.$/, message: /escapes its directory/ },
  { name: 'bare .wh. whiteout', layers: [base, [{ path: 'sub/.wh.', type: 'file' }]], entry: /sub\/\.wh\.$/, message: /bare \.wh\./ },
];

describe('malicious layers are refused', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const src = path.join(work, 'evil.tar');
      fs.writeFileSync(src, legacyArchive({ layers: c.layers.map(layerTar), tag: 'gfflat/evil:1' }));
      const before = snapshot(outside);
      const outTar = path.join(work, 'out.tar');
      const outSb = path.join(work, 'sandbox');
      for (const run of [() => flattenToArchive({ source: src, output: outTar }), () => writeSandbox({ source: src, output: outSb })]) {
        const err = await run().then(() => null, (e) => e);
        expect(err, 'must be refused').not.toBeNull();
        expect(err).toBeInstanceOf(UsageError); // exit 2
        expect(err.where).toMatch(/^layer \d+ \(l\d\/layer\.tar\): /);
        expect(err.where).toMatch(c.entry);
        expect(err.message).toMatch(c.message);
      }
      expect(fs.existsSync(outTar)).toBe(false);
      expect(fs.existsSync(outSb)).toBe(false);
      expect(fs.readdirSync(work).sort()).toEqual(['evil.tar', 'outside']);
      expect(snapshot(outside)).toBe(before);
      expect(fs.existsSync(path.join('/tmp', EVIL))).toBe(false);
    });
  }

  it('an entry-count limit refuses decompression bombs', async () => {
    const src = path.join(work, 'evil.tar');
    fs.writeFileSync(src, legacyArchive({ layers: [layerTar(Array.from({ length: 50 }, (_, i) => ({ path: `f${i}`, data: '' })))] }));
    await expect(flattenToArchive({ source: src, output: path.join(work, 'o.tar'), limits: { maxEntries: 20 } })).rejects.toSatisfy((e: unknown) => e instanceof UsageError && e.message.includes('more than 20 entries'));
    fs.rmSync(src);
  });
});

describe('legitimate look-alikes stay inside the root', () => {
  it('absolute symlinks in parents are root-relative; a final symlink is replaced, never followed', async () => {
    const src = path.join(work, 'ok.tar');
    fs.writeFileSync(src, legacyArchive({
      tag: 'gfflat/ok:1',
      layers: [
        layerTar([...base, { path: 'abs', type: 'symlink', link: `/tmp/${EVIL}` }, { path: 'fin', type: 'symlink', link: `/tmp/${EVIL}/final` }, { path: 'lib', type: 'symlink', link: 'usr/lib' }, { path: 'usr/', type: 'dir' }, { path: 'usr/lib/', type: 'dir' }]),
        layerTar([{ path: 'abs/inside', data: 'in' }, { path: 'fin', data: 'replaced' }, { path: 'lib/libx.so', data: 'elf' }]),
      ],
    }));
    const out = path.join(work, 'okbox');
    await writeSandbox({ source: src, output: out });
    const t = treeFromDir(out);
    expect(t.get(`tmp/${EVIL}/inside`)?.type).toBe('file');
    expect(t.get('fin')?.type).toBe('file');
    expect(t.get('abs')?.link).toBe(`/tmp/${EVIL}`); // kept verbatim
    expect(t.get('usr/lib/libx.so')?.type).toBe('file');
    expect(fs.existsSync(path.join('/tmp', EVIL))).toBe(false);
    fs.rmSync(out, { recursive: true });
    fs.rmSync(src);
  });
});
