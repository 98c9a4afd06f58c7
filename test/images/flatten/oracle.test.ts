/**
 * Oracle tests against Docker itself: a fixture image built by the real engine with steps that
 * delete files, turn directories into files and back, make opaque directories, hardlink across
 * layers then delete/modify one side, set setuid/odd modes/ownership, symlinks, empty dirs, long
 * and non-ASCII names, FIFOs and device nodes. `docker export` of a container from the original
 * image must equal (path, type, mode, uid, gid, size, content hash, link target) the flattened
 * layer, the flattened image re-exported from the engine, and the sandbox (documented additions
 * and owner-writable modes aside).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { flattenToArchive, flattenToEngine, flattenToOci, SOURCE_LABEL } from '../../../images/flatten/index.ts';
import { writeSandbox } from '../../../images/sandbox/index.ts';
import { indexTarFile } from '../../../images/archive/tar-index.ts';
import { diffTrees, dockerBuild, exportTree, PREFIX, removeImages, treeFromDir, treeFromTarFile, type Tree } from './helpers.ts';

const TAG = `${PREFIX}-oracle:${process.pid}`;
const FLAT = `${PREFIX}-oracle:${process.pid}-flat`;
const LONG = 'L'.repeat(200);
const DEEP = Array.from({ length: 6 }, (_, i) => `deep-directory-level-${i}-${'d'.repeat(40)}`).join('/');

const DOCKERFILE = `
FROM gridforge/base:debian-bookworm
RUN mkdir -p /t/del /t/d2f /t/opq/sub /t/empty /t/hl /t/keepdir \\
 && echo a > /t/del/a && echo b > /t/del/b && echo x > /t/d2f/x && echo f > /t/f2d \\
 && echo o1 > /t/opq/o1 && echo o2 > /t/opq/sub/o2 && echo orig > /t/hl/orig && echo keep > /t/hl/keep \\
 && echo same > /t/keepdir/same
RUN rm /t/del/a && rm -r /t/d2f && echo nowfile > /t/d2f && rm /t/f2d && mkdir /t/f2d && echo inner > /t/f2d/inner \\
 && ln /t/hl/orig /t/hl/link1 && ln /t/hl/keep /t/hl/link2 && ln /t/hl/orig /t/crossdir-link \\
 && chmod 0750 /t/keepdir && chown 4242:4343 /t/keepdir
RUN rm -r /t/opq && mkdir -p /t/opq/new && echo n > /t/opq/new/n && echo top > /t/opq/top
RUN rm /t/hl/orig && echo modified >> /t/hl/keep && rm /t/d2f && mkdir /t/d2f && echo again > /t/d2f/again
RUN cp /bin/true /t/suid && chown 1234:5678 /t/suid && chmod 6755 /t/suid \\
 && echo z > /t/zero && chmod 0000 /t/zero && mkdir /t/sticky && chmod 1777 /t/sticky \\
 && mkdir /t/odd && chown 7:8 /t/odd && chmod 0511 /t/odd \\
 && ln -s /etc/hostname /t/abs && ln -s ../del/b /t/rel && ln -s /nonexistent/target /t/dangling \\
 && mkdir -p /t/empty2 /t/names && echo long > /t/names/${LONG} && mkdir -p /t/names/${DEEP} && echo deep > /t/names/${DEEP}/file \\
 && echo u > "/t/names/ünïcödé-名前 with space" && mkfifo /t/fifo && mknod /t/nulldev c 1 3
ENV GF_A=1 GF_B="two words"
LABEL org.example.test="yes"
WORKDIR /t
USER 1234:5678
EXPOSE 8884/udp 1093
VOLUME /t/vol
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s CMD true
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
`;

let work: string;
let original: Tree;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-oracle-`));
  await dockerBuild(TAG, DOCKERFILE);
  original = await exportTree(TAG);
}, 600_000);

afterAll(async () => {
  await removeImages([FLAT, TAG]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function layerOf(archive: string): { offset: number; size: number } {
  const idx = indexTarFile(archive);
  const manifest = JSON.parse(fs.readFileSync(archive).subarray(idx.get('manifest.json')!.offset, idx.get('manifest.json')!.offset + idx.get('manifest.json')!.size).toString());
  const m = idx.get(manifest[0].Layers[0])!;
  return { offset: m.offset, size: m.size };
}

describe('flatten vs docker export', () => {
  it('the fixture really exercises the cases', () => {
    expect(original.get('t/d2f')?.type).toBe('dir');
    expect(original.get('t/d2f/again')?.hash).toBeDefined();
    expect(original.has('t/d2f/x')).toBe(false);
    expect(original.has('t/opq/o1')).toBe(false);
    expect(original.has('t/opq/sub')).toBe(false);
    expect(original.get('t/suid')?.mode).toBe(0o6755);
    expect(original.get('t/abs')?.link).toBe('/etc/hostname');
    expect(original.get(`t/names/${DEEP}/file`)?.type).toBe('file');
    expect(original.get('t/fifo')?.type).toBe('fifo');
    expect(original.get('t/nulldev')?.type).toBe('char');
    expect(original.get('t/hl/link1')?.group).toBe('t/crossdir-link');
  });

  it('flattened layer tar equals the export of the original image, and is deterministic', async () => {
    const a1 = path.join(work, 'flat1.tar');
    const a2 = path.join(work, 'flat2.tar');
    const r1 = await flattenToArchive({ source: TAG, output: a1 });
    const r2 = await flattenToArchive({ source: TAG, output: a2 });
    expect(r1.digest).toBe(r2.digest);
    expect(r1.diffId).toBe(r2.diffId);
    expect(fs.readFileSync(a1).equals(fs.readFileSync(a2))).toBe(true);
    const { offset, size } = layerOf(a1);
    const flat = await treeFromTarFile(a1, offset, size);
    expect(diffTrees(original, flat, { groups: true, ignore: (p) => p === 'etc' && !flat.has('etc') })).toEqual([]);
  });

  it('loads into the engine as one layer that exports the same tree, with the config kept', async () => {
    const r = await flattenToEngine({ source: TAG, tag: FLAT });
    expect(r.ref).toBe(FLAT);
    const inspect = JSON.parse((await execa('docker', ['image', 'inspect', FLAT])).stdout)[0];
    const src = JSON.parse((await execa('docker', ['image', 'inspect', TAG])).stdout)[0];
    expect(inspect.Id).toBe(r.digest);
    expect(inspect.RootFS.Layers).toHaveLength(1);
    expect(src.RootFS.Layers.length).toBeGreaterThan(5);
    for (const k of ['Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Healthcheck']) {
      expect(inspect.Config[k], k).toEqual(src.Config[k]);
    }
    expect(inspect.Config.Labels['org.example.test']).toBe('yes');
    expect(inspect.Config.Labels[SOURCE_LABEL]).toBe(src.Id);
    const hist = JSON.parse((await execa('docker', ['image', 'history', '--no-trunc', '--format', '{{json .}}', FLAT])).stdout.split('\n')[0]);
    expect(hist.CreatedBy).toContain(src.Id);
    const flatExport = await exportTree(FLAT);
    expect(diffTrees(original, flatExport, { groups: true })).toEqual([]);
    // the flattened image runs with its Entrypoint/Cmd/Env
    const run = await execa('docker', ['run', '--rm', FLAT, 'echo "$GF_B" $(id -u) $(pwd)']);
    expect(run.stdout.trim()).toBe('two words 1234 /t');
  });

  it('OCI layout output round-trips to the same layer', async () => {
    const oci = path.join(work, 'oci');
    const r = await flattenToOci({ source: TAG, output: oci });
    expect(fs.existsSync(path.join(oci, 'oci-layout'))).toBe(true);
    const again = await flattenToArchive({ source: oci, output: path.join(work, 'from-oci.tar'), tag: 'x/y:z' });
    expect(again.diffId).toBe(r.diffId);
  });

  it('sandbox equals the export (owner-writable modes, no devices, documented additions)', async () => {
    const out = path.join(work, 'sandbox');
    const r = await writeSandbox({ source: TAG, output: out });
    const sb = treeFromDir(out);
    const added = new Set(r.added);
    const diffs = diffTrees(original, sb, {
      groups: true,
      expect: (p, e) => {
        if (e.type === 'char' || e.type === 'block') return null;
        if (e.type === 'dir') return { ...e, mode: e.mode | 0o700 };
        if (e.type === 'file' || e.type === 'fifo') return { ...e, mode: (e.mode & ~0o6000) | 0o600 }; // setuid/setgid dropped (images/sandbox/write-tree.ts)
        return e;
      },
      extraAllowed: (p) => added.has(p) || p === '.singularity.d' || p.startsWith('.singularity.d/'),
      ignore: (p) => p === 'etc' && !sb.has('etc'),
    });
    expect(diffs).toEqual([]);
    expect(r.stats.skippedDevices).toBeGreaterThan(0);
    for (const b of ['cvmfs', 'workdir', 'srv', 'tmp', 'var/tmp']) expect(sb.get(b)?.type, b).toBe('dir');
    for (const f of ['etc/localtime', 'etc/hosts', 'etc/resolv.conf']) expect(sb.has(f), f).toBe(true);
    expect(sb.get('singularity')?.link).toBe('.singularity.d/runscript');
    expect(sb.get('environment')?.link).toBe('.singularity.d/env/90-environment.sh');
    const env = fs.readFileSync(path.join(out, '.singularity.d/env/10-docker2singularity.sh'), 'utf8');
    expect(env).toContain('export GF_B="${GF_B:-"two words"}"');
    expect(env).toMatch(/^export PATH="[^$]+"$/m);
    expect(JSON.parse(fs.readFileSync(path.join(out, '.singularity.d/labels.json'), 'utf8'))['org.example.test']).toBe('yes');
    // the runscript runs Entrypoint + Cmd, arguments replace Cmd
    const rs = path.join(out, '.singularity.d/runscript');
    expect((await execa('sh', [rs])).stdout).toBe('hi');
    expect((await execa('sh', [rs, 'echo "it\'s $((1+1))"'])).stdout).toBe("it's 2");
    // everything owner-writable: the sandbox can be deleted
    fs.rmSync(out, { recursive: true });
  });
});
