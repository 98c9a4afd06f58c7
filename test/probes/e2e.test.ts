// The Grid team's migration workflow end to end through the CLI: publish the probes into a
// repository made by `repo init`, check it out as a node's /cvmfs, run the probes on five test
// "nodes" that differ (good x2, an old CPU, no /cvmfs, user namespaces disabled for real) and
// upload to `probe serve`, `probe report`, `migrate check`, then `repo link --require-ready`
// refusing while too few nodes can run the EL9-like image and allowing once a site is fixed.
import { execa, type ResultPromise } from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { link, openRepository, publishTree } from '../../cvmfs-publish/index.ts';
import { CLI } from '../support/paths.ts';
import { projectConfigYaml } from '../support/project-config.ts';
import { CPUINFO, fakeProc, makeImage, OS_RELEASE, tempDir } from './helpers.ts';

const work = tempDir();
const repo = path.join(work, 'repo');
const mount = path.join(work, 'cvmfs', 'alice.example.org');
const db = path.join(work, 'sitesonar.db');
const ENV = { ...process.env, GRIDFORGE_QUIET: '1' };
let serve: ResultPromise | undefined;
let url = '';

const gf = (args: string[], opts: { env?: Record<string, string>; prefix?: string[] } = {}) =>
  execa(opts.prefix?.[0] ?? process.execPath, [...(opts.prefix?.slice(1) ?? []), ...(opts.prefix ? [process.execPath] : []), CLI, ...args], { env: { ...ENV, ...opts.env }, reject: false, cwd: work });

beforeAll(async () => {
  expect((await gf(['repo', 'init', repo, '--name', 'alice.example.org'])).exitCode).toBe(0);
  // the job images (through the library: the CLI's publish is tested in test/cvmfs-publish)
  for (const [name, spec] of [['debian12', {}], ['alma9', { isaLevel: 2, osRelease: OS_RELEASE('almalinux-9') }], ['alma9-noworkdir', { isaLevel: 2, workdir: false }]] as const) {
    await publishTree(repo, await makeImage(path.join(work, 'images', name), spec), `containers/fs/singularity/${name}`, { onProgress: () => undefined });
  }
  await link(repo, 'containers/fs/singularity/default', 'debian12', { tag: 'os-debian12', onProgress: () => undefined });
  serve = execa(process.execPath, [CLI, 'probe', 'serve', '--results', db, '--port', '0', '--json'], { env: ENV, buffer: false });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    serve!.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      try {
        resolve(JSON.parse(out).url);
      } catch {
        /* not complete yet */
      }
    });
    serve!.catch(reject);
  });
}, 120_000);

afterAll(async () => {
  if (serve?.pid) process.kill(serve.pid, 'SIGTERM');
  await serve?.catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(`${repo}.keys`, { recursive: true, force: true });
});

describe('OS migration workflow', () => {
  it('publish, check out, run on five nodes, collect, report, migrate check, link with --require-ready', async () => {
    // 1. the probes into the repository, as a tagged tree
    const pub = await gf(['probe', 'publish', '--repo', repo, '--json']);
    expect(pub.exitCode, pub.stderr).toBe(0);
    const published = JSON.parse(pub.stdout);
    expect(published).toMatchObject({ path: 'sitesonar/sitesonar.d', tag: `sitesonar-${published.version}` });
    expect(published.probes).toEqual(['container', 'cpu', 'cvmfs', 'gpu', 'memory', 'network', 'os', 'scratch', 'userns']);
    const tags = JSON.parse((await gf(['repo', 'tags', repo, '--json'])).stdout).tags.map((t: { name: string }) => t.name);
    expect(tags).toContain(published.tag);

    // 2. a node's view of the repository
    const co = await gf(['repo', 'checkout', repo, mount]);
    expect(co.exitCode, co.stderr).toBe(0);
    const probesDir = path.join(mount, 'sitesonar/sitesonar.d');
    expect(fs.readFileSync(path.join(probesDir, 'VERSION'), 'utf8').trim()).toBe(published.version);

    // 3. five nodes run the probes and upload
    const net = ['--network-host', '127.0.0.1', '--network-port', '1', '--upload', url];
    const cvmfsEnv = { SITESONAR_CVMFS_ROOT: path.dirname(mount), SITESONAR_CVMFS_REPOS: 'alice.example.org' };
    const runs = await Promise.all([
      gf(['probe', 'run', '--from-cvmfs', mount, '--site', 'CERN', '--ce', 'CERN-A', '--hostname', 'wn-a.cern.ch', ...net]),
      gf(['probe', 'run', '--probes-dir', probesDir, '--site', 'CERN', '--ce', 'CERN-B', '--hostname', 'wn-b.cern.ch', ...net], { env: cvmfsEnv }),
      gf(['probe', 'run', '--from-cvmfs', mount, '--site', 'OLD', '--hostname', 'wn-old.example.org', ...net], { env: { SITESONAR_PROC_ROOT: fakeProc(path.join(work, 'proc-penryn'), CPUINFO('core2-penryn-e8400')) } }),
      gf(['probe', 'run', '--probes-dir', probesDir, '--image', path.join(mount, 'containers/fs/singularity/default'), '--site', 'NOCVMFS', '--hostname', 'wn-nocvmfs.example.org', ...net], { env: { SITESONAR_CVMFS_ROOT: path.join(work, 'no-cvmfs') } }),
      gf(['probe', 'run', '--from-cvmfs', mount, '--site', 'NOUSERNS', '--hostname', 'wn-nouserns.example.org', ...net], { prefix: ['unshare', '-U', '-r', 'sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', 'sh'] }),
    ]);
    for (const r of runs) expect(r.exitCode, r.stderr).toBe(0);
    const a = JSON.parse(runs[0].stdout);
    expect(a.probes.container).toMatchObject({ run_ok: true, binds: '/cvmfs /workdir', image: path.join(mount, 'containers/fs/singularity/default') });
    expect(a.probes.cvmfs.mounted).toEqual(['alice.example.org']);

    // 4. the report
    const rep = await gf(['probe', 'report', '--results', db, '--json', '--html', path.join(work, 'report.html')]);
    expect(rep.exitCode, rep.stderr).toBe(0);
    const report = JSON.parse(rep.stdout);
    expect(report.nodes).toBe(5);
    expect(report.sites.map((s: { site: string; nodes: number }) => [s.site, s.nodes])).toEqual([['CERN', 2], ['NOCVMFS', 1], ['NOUSERNS', 1], ['OLD', 1]]);
    const hostLevel = a.probes.cpu.x86_64_level;
    expect(hostLevel).toBeGreaterThanOrEqual(2);
    expect(report.values['cpu.x86_64_level']).toEqual({ [hostLevel]: 4, 1: 1 });
    expect(report.values['userns.enabled']).toEqual({ true: 4, false: 1 });
    expect(report.values['container.run_ok']).toEqual({ true: 4, false: 1 });
    expect(report.values['cvmfs.mounted']).toEqual({ 'alice.example.org': 4, '(empty)': 1 });
    expect(fs.readFileSync(path.join(work, 'report.html'), 'utf8')).toContain('<td>NOUSERNS</td>');
    const text = await gf(['probe', 'report', '--results', db, '--where', 'cpu.x86_64_level=1', '--key', 'cpu.model']);
    expect(text.stdout).toMatch(/^1 nodes in 1 sites where cpu\.x86_64_level=1/);
    expect(text.stdout).toMatch(/OLD\s+1\s+Intel\(R\) Core\(TM\)2 Duo CPU\s+E8400/);

    // 5. who can run the EL9-like image, and why not
    const check = await gf(['migrate', 'check', 'containers/fs/singularity/alma9', '--results', db, '--repo', repo, '--json']);
    expect(check.exitCode, check.stderr).toBe(0);
    const c = JSON.parse(check.stdout);
    expect(c.image).toMatchObject({ arch: 'x86_64', x86_64_level: 2, bindPoints: { '/cvmfs': true, '/workdir': true } });
    expect([c.nodes, c.ready, c.percent]).toEqual([5, 2, 40]);
    const reasons = Object.fromEntries(c.sites.map((s: { site: string; reasons: object }) => [s.site, s.reasons]));
    expect(reasons).toEqual({ CERN: {}, OLD: { 'cpu-level': 1 }, NOCVMFS: { 'cvmfs-missing': 1 }, NOUSERNS: { 'userns-disabled': 1, 'container-run': 1 } });
    const human = await gf(['migrate', 'check', 'containers/fs/singularity/alma9', '--results', db, '--repo', repo]);
    expect(human.stdout).toContain('2 of 5 nodes (40%) can run it');
    expect(human.stdout).toMatch(/wn-old\.example\.org\s+OLD\s+OLD\s+CPU reaches x86-64-v1, the image needs x86-64-v2 \(missing: popcnt sse4_2\)/);
    // as the issue writes it, without --repo: the repository of gridforge.yaml (here one named by --config)
    const cfg = path.join(work, 'gridforge-migrate.yaml');
    fs.writeFileSync(path.join(work, 'packages.txt'), 'bash\n');
    fs.writeFileSync(cfg, projectConfigYaml({ prefix: 'gfprobe', repository: { dir: repo, name: 'alice.example.org', keys: `${repo}.keys` } }));
    const fromConfig = await gf(['--config', cfg, 'migrate', 'check', 'containers/fs/singularity/alma9', '--results', db, '--json']);
    expect(fromConfig.exitCode, fromConfig.stderr).toBe(0);
    expect(JSON.parse(fromConfig.stdout).ready).toBe(2);
    const noRepo = await gf(['--config', path.join(work, 'absent.yaml'), 'migrate', 'check', 'containers/fs/singularity/alma9', '--results', db]);
    expect(noRepo.exitCode).toBe(2);
    expect(noRepo.stderr).toMatch(/--repo: no repository given/);
    const noWorkdir = JSON.parse((await gf(['migrate', 'check', 'containers/fs/singularity/alma9-noworkdir', '--results', db, '--repo', repo, '--json'])).stdout);
    expect([noWorkdir.ready, noWorkdir.imageProblems.map((p: { code: string }) => p.code)]).toEqual([0, ['image-lacks-workdir']]);

    // 6. the switch: refused below the threshold (nothing published), allowed once a site is fixed
    const target = async () => (await (await openRepository(repo)).stat('containers/fs/singularity/default'))?.target;
    const before = JSON.parse((await gf(['repo', 'tags', repo, '--json'])).stdout).revisions.length;
    const refused = await gf(['repo', 'link', repo, 'containers/fs/singularity/default', 'alma9', '--require-ready', '50', '--results', db]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('refusing to switch containers/fs/singularity/default -> alma9: 2 of 5 nodes (40%) can run containers/fs/singularity/alma9, 50% required');
    expect(refused.stderr).toMatch(/OLD: 0\/1 nodes ready \(0%\): cpu-level 1/);
    expect(refused.stderr).toMatch(/NOCVMFS: 0\/1 nodes ready \(0%\): cvmfs-missing 1/);
    expect(refused.stderr).toMatch(/NOUSERNS: 0\/1 nodes ready \(0%\): userns-disabled 1, container-run 1/);
    expect(refused.stderr).not.toMatch(/CERN:/);
    expect(await target()).toBe('debian12');
    expect(JSON.parse((await gf(['repo', 'tags', repo, '--json'])).stdout).revisions.length).toBe(before);
    const usage = await gf(['repo', 'link', repo, 'containers/fs/singularity/default', 'alma9', '--require-ready', '50']);
    expect([usage.exitCode, usage.stderr]).toEqual([2, expect.stringContaining('--require-ready and --results go together')]);
    const badPct = await gf(['repo', 'link', repo, 'containers/fs/singularity/default', 'alma9', '--require-ready', '150', '--results', db]);
    expect(badPct.exitCode).toBe(2);

    // the NOCVMFS site gets its mount: its node reports again, and 3 of 5 (60%) is enough
    const fixed = await gf(['probe', 'run', '--probes-dir', probesDir, '--site', 'NOCVMFS', '--hostname', 'wn-nocvmfs.example.org', ...net], { env: cvmfsEnv });
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    const allowed = await gf(['repo', 'link', repo, 'containers/fs/singularity/default', 'alma9', '--require-ready', '50', '--results', db, '--tag', 'os-alma9'], { env: { GRIDFORGE_QUIET: '0' } });
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(allowed.stderr).toContain('readiness: 3 of 5 nodes (60%) can run alma9, 50% required');
    expect(await target()).toBe('alma9');
  }, 140_000);
});
