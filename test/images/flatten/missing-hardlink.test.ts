/**
 * The policy for a layer's hard link whose target does not exist (images/layer/hardlink-policy.ts):
 * a hand-made image whose second layer links `d/orphan` to a path no layer ever created and
 * `d/relinked` to a file the same layer whited out (Docker itself refuses to load such a layer).
 * Default `refuse`: exit 2 naming the layer, the entry and the flag, nothing written (no archive,
 * no sandbox directory, no temporary, no tree in the repository). `empty`: an empty regular file
 * with the entry's own metadata and one warning per entry, through the library, the CLI
 * (`--missing-hardlink-target`), and `image sync` (wish-list key `missingHardlinkTarget`, and the
 * flag overriding it), the synced tree read back with the repository's checkout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { UsageError } from '../../../base/errors.ts';
import { flattenToArchive } from '../../../images/flatten/index.ts';
import { writeSandbox } from '../../../images/sandbox/index.ts';
import { checkout, initRepository, openRepository } from '../../../cvmfs-publish/index.ts';
import { syncImages } from '../../../release/image-sync/index.ts';
import { gf, startRegistry, type Registry } from '../registry/helpers.ts';
import { layerTar, legacyArchive, PREFIX, treeFromDir, treeFromTarFile } from './helpers.ts';
import { layerOf } from './peer-fixtures.ts';

const MTIME = 1_700_000_123;
let work: string;
let archive: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-missing-hl-`));
  archive = path.join(work, 'img.tar');
  fs.writeFileSync(archive, legacyArchive({
    tag: `${PREFIX}-missing-hl:${process.pid}`,
    layers: [
      layerTar([{ path: 'd/', type: 'dir' }, { path: 'd/keep', data: 'keep\n' }, { path: 'd/old', data: 'old\n' }]),
      layerTar([
        { path: 'd/', type: 'dir' },
        { path: 'd/orphan', type: 'hardlink', link: 'gone/never-there', mode: 0o750, uid: 1234, gid: 5678, mtime: MTIME, xattrs: { 'user.origin': Buffer.from([0xff, 0x00, 0x80]) } },
        { path: 'd/.wh.old', mode: 0o600 },
        { path: 'd/relinked', type: 'hardlink', link: 'd/old', mode: 0o640, uid: 42, gid: 43, mtime: MTIME },
      ]),
    ],
  }));
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Files in `dir` other than the input archive (outputs and temporaries). */
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f !== 'img.tar');

describe('default: refuse', () => {
  it('flattenToArchive throws a UsageError naming the layer, the entry and the flag, and writes nothing', async () => {
    const out = path.join(work, 'refused', 'flat.tar');
    fs.mkdirSync(path.dirname(out));
    const err = await flattenToArchive({ source: archive, output: out }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('"gone/never-there" does not exist inside the image');
    expect(err.where).toMatch(/layer.*: d\/orphan$/);
    expect(err.hint).toContain('--missing-hardlink-target empty');
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });

  it('writeSandbox leaves no sandbox directory and no temporary', async () => {
    const dir = path.join(work, 'refused-sb');
    fs.mkdirSync(dir);
    const err = await writeSandbox({ source: archive, output: path.join(dir, 'box') }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.where).toMatch(/: d\/orphan$/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('CLI: image flatten and image sandbox exit 2 with the fix named, nothing written', async () => {
    const dir = path.join(work, 'refused-cli');
    fs.mkdirSync(dir);
    const f = await gf(['image', 'flatten', archive, '--output', path.join(dir, 'flat.tar')]);
    expect(f.code).toBe(2);
    expect(f.stderr).toContain('d/orphan');
    expect(f.stderr).toContain('--missing-hardlink-target empty');
    const s = await gf(['image', 'sandbox', archive, '--output', path.join(dir, 'box')]);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('d/orphan');
    expect(fs.readdirSync(dir)).toEqual([]);
    const bad = await gf(['image', 'flatten', archive, '--output', path.join(dir, 'flat.tar'), '--missing-hardlink-target', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--missing-hardlink-target');
    expect(bad.stderr).toContain('refuse or empty');
    expect(fs.readdirSync(dir)).toEqual([]);
    const help = await gf(['image', 'flatten', '--help']);
    expect(help.stdout).toContain('--missing-hardlink-target <refuse|empty>');
  });
});

describe('missing-hardlink-target empty', () => {
  it('flattenToArchive writes empty files with the entries\' own metadata and one warning per entry', async () => {
    const out = path.join(work, 'empty.tar');
    const seen: string[] = [];
    const r = await flattenToArchive({ source: archive, output: out, missingHardlinkTarget: 'empty', onWarning: (m) => seen.push(m) });
    expect(r.warnings).toEqual(seen);
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(/: d\/orphan: hardlink target "gone\/never-there" does not exist inside the image; written as an empty file/);
    expect(r.warnings[1]).toMatch(/: d\/relinked: hardlink target "d\/old"/);
    const { offset, size } = layerOf(out);
    const t = await treeFromTarFile(out, offset, size);
    expect(t.get('d/orphan')).toMatchObject({ type: 'file', size: 0, mode: 0o750, uid: 1234, gid: 5678 });
    expect(t.get('d/orphan')?.group).toBeUndefined();
    expect(t.get('d/relinked')).toMatchObject({ type: 'file', size: 0, mode: 0o640, uid: 42, gid: 43 });
    expect(t.has('d/old')).toBe(false);
    expect(t.get('d/keep')?.size).toBe(5);
    // the entry's mtime and xattrs, as GNU tar reads them back
    const x = path.join(work, 'empty-x');
    fs.mkdirSync(x);
    await execa('tar', ['--xattrs', '--xattrs-include=*', '-xpf', '-', '-C', x], { input: fs.readFileSync(out).subarray(offset, offset + size) });
    expect(fs.statSync(path.join(x, 'd/orphan')).mtimeMs / 1000).toBe(MTIME);
    expect((await execa('getfattr', ['-n', 'user.origin', '-e', 'hex', path.join(x, 'd/orphan')])).stdout).toContain('user.origin=0xff0080');
  });

  it('writeSandbox writes the empty files and reports the warnings', async () => {
    const out = path.join(work, 'empty-box');
    const r = await writeSandbox({ source: archive, output: out, missingHardlinkTarget: 'empty' });
    expect(r.warnings).toHaveLength(2);
    const st = fs.statSync(path.join(out, 'd/orphan'));
    expect(st.isFile() && st.size === 0 && st.nlink === 1).toBe(true);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 1234, 5678]);
    expect(fs.readFileSync(path.join(out, 'd/keep'), 'utf8')).toBe('keep\n');
  });

  it('CLI: --missing-hardlink-target empty, a warning per entry on stderr and in --json', async () => {
    const out = path.join(work, 'cli-empty.tar');
    const r = await gf(['image', 'flatten', archive, '--output', out, '--missing-hardlink-target', 'empty', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/^warning: .*d\/(orphan|relinked): hardlink target/gm)).toHaveLength(2);
    expect(JSON.parse(r.stdout).warnings).toHaveLength(2);
    const box = path.join(work, 'cli-box');
    const s = await gf(['image', 'sandbox', archive, '--output', box, '--missing-hardlink-target', 'empty']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/^warning: .*d\/orphan: hardlink target/m);
    expect(fs.statSync(path.join(box, 'd/relinked')).size).toBe(0);
  });
});

describe('image sync: wish-list key missingHardlinkTarget and the flag', () => {
  let reg: Registry;
  let repo: string;
  const wish = (extra: string) => {
    const f = path.join(work, `wish-${Math.random().toString(16).slice(2, 8)}.yaml`);
    fs.writeFileSync(f, `${extra}images:\n  - image: docker://${reg.host}/missing/hl\n    tags: ["1"]\n`);
    return f;
  };

  beforeAll(async () => {
    reg = await startRegistry();
    await execa('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/missing/hl:1`]);
    repo = path.join(work, 'repo');
    await initRepository(repo, { name: 'missing.example.org' });
  }, 60_000);

  afterAll(async () => {
    await reg?.stop();
  });

  it('default: the sync refuses (UsageError naming the image and entry), no tree and no link written', async () => {
    const err = await syncImages({ wishList: wish(''), repo }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.where).toMatch(new RegExp(`^docker://${reg.host}/missing/hl@sha256:[0-9a-f]{64}: layer .*: d/orphan$`));
    expect(err.hint).toContain('missingHardlinkTarget: empty');
    const reader = await openRepository(repo);
    expect(await reader.stat('containers')).toBeFalsy();
    const bad = await syncImages({ wishList: wish('missingHardlinkTarget: maybe\n'), repo }).catch((e) => e);
    expect(bad).toBeInstanceOf(UsageError);
    expect(String(bad.where ?? '') + bad.message).toContain('missingHardlinkTarget');
  });

  it('the CLI flag overrides the wish list: empty files in the synced tree, warnings on stderr', async () => {
    const r = await gf(['image', 'sync', wish('missingHardlinkTarget: refuse\n'), '--repo', repo, '--missing-hardlink-target', 'empty', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.warnings).toHaveLength(2);
    expect(j.warnings[0]).toContain(`docker://${reg.host}/missing/hl@sha256:`);
    expect(r.stderr).toMatch(/^warning: .*d\/orphan: hardlink target/m);
    const dest = path.join(work, 'synced');
    await checkout(repo, dest, { path: j.plan.write[0].path });
    const t = treeFromDir(dest);
    expect(t.get('d/orphan')).toMatchObject({ type: 'file', size: 0, mode: 0o750, uid: 1234, gid: 5678 });
    expect(t.get('d/relinked')).toMatchObject({ type: 'file', size: 0, mode: 0o640 });
  });

  it('the wish-list key alone (per image) is enough', async () => {
    const fresh = path.join(work, 'repo2');
    await initRepository(fresh, { name: 'missing2.example.org' });
    const f = path.join(work, 'wish-key.yaml');
    fs.writeFileSync(f, `images:\n  - image: docker://${reg.host}/missing/hl\n    tags: ["1"]\n    missingHardlinkTarget: empty\n`);
    const r = await syncImages({ wishList: f, repo: fresh });
    expect(r.warnings).toHaveLength(2);
    const reader = await openRepository(fresh);
    const st = await reader.stat(`${r.plan.write[0].path}/d/orphan`);
    expect(st).toMatchObject({ type: 'file', size: 0, uid: 1234 });
  });
});
