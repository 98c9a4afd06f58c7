// The readiness rules and the report on known node results: what an image needs, read from the
// image in a real repository (ISA marker of its libc raised like EL9's, os-release, bind points,
// links followed); which nodes can run it and why not; counts and shares per site, CE and value.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRepository, link, openRepository, publishTree } from '../../cvmfs-publish/index.ts';
import {
  assessReadiness, buildReport, elfInfo, formatReport, judgeNode, openResultsStore, readImageRequirements, renderReportHtml,
  type ImageRequirements, type Node, type ResultsStore, type Upload,
} from '../../probes/index.ts';
import { makeImage, OS_RELEASE, tempDir, withIsaLevel } from './helpers.ts';

const work = tempDir();
const repo = path.join(work, 'repo');
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(`${repo}.keys`, { recursive: true, force: true });
});

const libc = fs.readFileSync(fs.realpathSync('/lib/x86_64-linux-gnu/libc.so.6'));

describe('ELF: machine and x86-64 ISA marker', () => {
  it('this host\'s libc (baseline), the same raised to v2 and v3, no marker, not ELF', () => {
    expect(elfInfo(libc)).toEqual({ machine: 'x86_64', x86IsaLevel: 1 });
    expect(elfInfo(withIsaLevel(libc, 2))).toEqual({ machine: 'x86_64', x86IsaLevel: 2 });
    expect(elfInfo(withIsaLevel(libc, 3))).toEqual({ machine: 'x86_64', x86IsaLevel: 3 });
    expect(elfInfo(withIsaLevel(libc, 0))).toEqual({ machine: 'x86_64' });
    expect(elfInfo(Buffer.from('#!/bin/sh\necho not elf\n'.repeat(4)))).toBeUndefined();
  });
});

describe('image requirements from the repository', () => {
  beforeAll(async () => {
    await initRepository(repo, { name: 'alice.example.org' });
    const images: [string, Parameters<typeof makeImage>[1]][] = [
      ['debian12', {}],
      ['alma9', { isaLevel: 2, osRelease: OS_RELEASE('almalinux-9') }],
      ['alma9-noworkdir', { isaLevel: 2, osRelease: OS_RELEASE('almalinux-9'), workdir: false }],
      ['alma9-nomarker', { isaLevel: 0, osRelease: OS_RELEASE('almalinux-9') }],
    ];
    for (const [name, spec] of images) {
      const dir = await makeImage(path.join(work, 'images', name), spec);
      if (name === 'alma9') fs.symlinkSync('../usr/lib/os-release', path.join(dir, 'etc/os-release.link'));
      await publishTree(repo, dir, `containers/fs/singularity/${name}`);
    }
    await link(repo, 'containers/fs/singularity/default', 'debian12');
  }, 60_000);

  const req = async (p: string) => readImageRequirements(await openRepository(repo), p);

  it('reads arch, level and bind points; follows the default link', async () => {
    expect(await req('containers/fs/singularity/default')).toMatchObject({
      resolved: 'containers/fs/singularity/debian12', arch: 'x86_64', x86_64_level: 1, os: { id: 'debian', versionId: '12' }, bindPoints: { '/cvmfs': true, '/workdir': true },
    });
    const alma = await req('/containers/fs/singularity/alma9/');
    expect(alma).toMatchObject({ arch: 'x86_64', x86_64_level: 2, os: { id: 'almalinux', versionId: '9.4' } });
    expect(alma.levelFrom).toMatch(/ISA marker of \/lib\/x86_64-linux-gnu\/libc\.so\.6/);
    expect((await req('containers/fs/singularity/alma9-noworkdir')).bindPoints).toEqual({ '/cvmfs': true, '/workdir': false });
    const nomarker = await req('containers/fs/singularity/alma9-nomarker');
    expect(nomarker).toMatchObject({ x86_64_level: 2 });
    expect(nomarker.levelFrom).toMatch(/os-release \(almalinux 9\.4/);
  });

  it('refuses a path that is not an image directory', async () => {
    await expect(req('containers/fs/singularity/nope')).rejects.toThrow(/not an image directory/);
  });
});

/** A node's results, as the probes print them, with overrides per probe. */
function nodeResults(over: Record<string, Record<string, unknown> | null> = {}): Upload['probes'] {
  const ok = { EXITCODE: 0, EXECUTION_TIME: 100 };
  const base: Record<string, Record<string, unknown>> = {
    os: { id: 'centos', version_id: '7', name: 'CentOS Linux 7 (Core)', cgroup: '1', ...ok },
    cpu: { arch: 'x86_64', x86_64_level: 3, missing_for_next_level: 'avx512f avx512bw avx512cd avx512dq avx512vl', ...ok },
    userns: { enabled: true, apparmor_restricted: false, reason: null, ...ok },
    container: { runtimes: ['apptainer'], setuid_runtime: false, run_ok: true, run_error: null, ...ok },
    cvmfs: { root: '/cvmfs', mounted: ['alice.example.org', 'sft.cern.ch'], ...ok },
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete base[k];
    else base[k] = { ...base[k], ...v };
  }
  return base as Upload['probes'];
}

const REQ: ImageRequirements = { path: 'x', resolved: 'x', arch: 'x86_64', x86_64_level: 2, levelFrom: 'test', os: { id: 'almalinux', versionId: '9.4' }, bindPoints: { '/cvmfs': true, '/workdir': true } };
const node = (probes: Upload['probes']): Node => ({ hostname: 'n', site: 'S', ce: 'S', received: 0, probes });
const codes = (n: Node, req = REQ) => judgeNode(n, req, 'alice.example.org').map((r) => r.code);

describe('readiness rules', () => {
  it('one reason per rule that fails', () => {
    expect(codes(node(nodeResults()))).toEqual([]);
    expect(codes(node(nodeResults({ cpu: { x86_64_level: 1, missing_for_next_level: 'popcnt sse4_2' } })))).toEqual(['cpu-level']);
    expect(judgeNode(node(nodeResults({ cpu: { x86_64_level: 1, missing_for_next_level: 'popcnt sse4_2' } })), REQ, 'alice.example.org')[0].detail).toBe('CPU reaches x86-64-v1, the image needs x86-64-v2 (missing: popcnt sse4_2)');
    expect(codes(node(nodeResults({ cpu: { arch: 'aarch64', x86_64_level: null } })))).toEqual(['arch']);
    expect(codes(node(nodeResults({ userns: { enabled: false, reason: 'user.max_user_namespaces is 0' } })))).toEqual(['userns-disabled']);
    expect(codes(node(nodeResults({ userns: { enabled: false }, container: { setuid_runtime: true } })))).toEqual([]);
    expect(codes(node(nodeResults({ userns: { apparmor_restricted: true } })))).toEqual(['userns-apparmor']);
    expect(codes(node(nodeResults({ userns: { apparmor_restricted: true }, container: { setuid_runtime: true } })))).toEqual([]);
    expect(codes(node(nodeResults({ container: { run_ok: false, run_error: 'bwrap: Can\'t mkdir /workdir' } })))).toEqual(['container-run']);
    expect(codes(node(nodeResults({ cvmfs: { mounted: [] } })))).toEqual(['cvmfs-missing']);
    expect(codes(node(nodeResults({ cvmfs: null })))).toEqual(['no-cvmfs-result']);
    expect(codes(node(nodeResults({ container: { EXITCODE: 137, TIMED_OUT: true, run_ok: undefined } })))).toEqual(['container-probe-failed', 'container-run']);
    expect(codes(node(nodeResults()), { ...REQ, bindPoints: { '/cvmfs': true, '/workdir': false } })).toEqual(['image-lacks-workdir']);
    expect(codes(node(nodeResults({ cpu: { x86_64_level: 1 } })), { ...REQ, x86_64_level: 1 })).toEqual([]);
  });
});

describe('report and readiness over a store', () => {
  let store: ResultsStore;
  beforeAll(() => {
    store = openResultsStore(path.join(work, 'results.db'));
    const put = (hostname: string, site: string, ce: string, probes: Upload['probes'], received: number) =>
      store.insertUpload({ schema: 'gridforge-sitesonar/1', hostname, site, ce, probes }, received);
    // CERN: 6 nodes on two CEs, one of them on an old CPU; FZK: 3 nodes with user namespaces off;
    // KISTI: 1 node without cvmfs. wn-cern-0 first reported an old CPU, then a new one (latest counts).
    put('wn-cern-0', 'CERN', 'CERN-A', nodeResults({ cpu: { x86_64_level: 1 } }), 1);
    for (let i = 0; i < 6; i++) put(`wn-cern-${i}`, 'CERN', i < 4 ? 'CERN-A' : 'CERN-B', nodeResults(i === 5 ? { cpu: { x86_64_level: 1 } } : {}), 10 + i);
    for (let i = 0; i < 3; i++) put(`wn-fzk-${i}`, 'FZK', 'FZK', nodeResults({ os: { name: 'AlmaLinux 9.4' }, userns: { enabled: false, reason: 'kernel.unprivileged_userns_clone is 0' } }), 20 + i);
    put('wn-kisti-0', 'KISTI', 'KISTI', nodeResults({ cvmfs: { mounted: [] } }), 30);
  });
  afterAll(() => store.close());

  it('counts nodes per site, CE and value, newest result per node', () => {
    expect(store.count()).toBe(11 * 5);
    const r = buildReport(store, {}, ['cpu.x86_64_level', 'userns.enabled', 'os.name', 'cvmfs.mounted']);
    expect(r.nodes).toBe(10);
    expect(r.values['cpu.x86_64_level']).toEqual({ 3: 9, 1: 1 });
    expect(r.values['userns.enabled']).toEqual({ true: 7, false: 3 });
    expect(r.values['cvmfs.mounted']).toEqual({ 'alice.example.org,sft.cern.ch': 9, '(empty)': 1 });
    const cern = r.sites.find((s) => s.site === 'CERN')!;
    expect(cern.nodes).toBe(6);
    expect(cern.ces.map((c) => [c.ce, c.nodes, c.values['cpu.x86_64_level']])).toEqual([['CERN-A', 4, { 3: 4 }], ['CERN-B', 2, { 3: 1, 1: 1 }]]);
    const text = formatReport(r);
    expect(text).toMatch(/^10 nodes in 3 sites/);
    expect(text).toMatch(/CERN\s+CERN-B\s+2\s+1\s+1\s+50\.0%/);
    expect(text).toMatch(/ALL\s+10\s+false\s+3\s+30\.0%/);
    const html = renderReportHtml(r);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(html).toContain('<td>CERN-B</td>');
  });

  it('refuses a file that is not a results store, and a missing one', () => {
    const other = path.join(work, 'not-a-store.db');
    fs.writeFileSync(other, 'hello, not SQLite\n'.repeat(100));
    expect(() => openResultsStore(other, { readonly: true })).toThrow(/not-a-store\.db is not a results store/);
    expect(() => openResultsStore(path.join(work, 'missing.db'), { readonly: true })).toThrow(/no results store at/);
  });

  it('filters by site and by facts', () => {
    expect(buildReport(store, { sites: ['FZK'] }).nodes).toBe(3);
    const old = buildReport(store, { where: ['cpu.x86_64_level=1'] }, ['os.name']);
    expect(old.nodes).toBe(1);
    expect(old.sites.map((s) => s.site)).toEqual(['CERN']);
    expect(buildReport(store, { where: ['userns.enabled=true', 'cvmfs.mounted=(empty)'] }).nodes).toBe(1);
    expect(() => buildReport(store, { where: ['nonsense'] })).toThrow(/not key=value/);
  });

  it('readiness: 5 of 10 nodes, sites ordered worst first with their reasons', () => {
    const r = assessReadiness(store, REQ, 'alice.example.org');
    expect([r.nodes, r.ready, r.percent]).toEqual([10, 5, 50]);
    expect(r.sites.map((s) => [s.site, s.nodes, s.ready, s.reasons])).toEqual([
      ['FZK', 3, 0, { 'userns-disabled': 3 }],
      ['KISTI', 1, 0, { 'cvmfs-missing': 1 }],
      ['CERN', 6, 5, { 'cpu-level': 1 }],
    ]);
    expect(r.notReady.map((n) => n.hostname).sort()).toEqual(['wn-cern-5', 'wn-fzk-0', 'wn-fzk-1', 'wn-fzk-2', 'wn-kisti-0']);
  });
});
