// The probe scripts on test hosts that differ where it matters: recorded /proc/cpuinfo of several
// CPU generations and os-release files (through the SITESONAR_* root overrides), user namespaces
// really disabled (user.max_user_namespaces=0 in a user namespace) and disabled by a recorded proc
// root, no /cvmfs, an image without /workdir run for real with bubblewrap, a probe that hangs.
import { execa } from 'execa';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledProbesDir, runProbe, runProbes } from '../../probes/index.ts';
import { CPUINFO, fakeProc, makeImage, OS_RELEASE, tempDir } from './helpers.ts';

const PROBES = bundledProbesDir();
const work = tempDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Run one probe script with extra environment; its parsed result. */
async function probe(name: string, env: Record<string, string> = {}): Promise<Record<string, any>> {
  return runProbe(path.join(PROBES, `${name}.sh`), { ...process.env, ...env }, work, 30_000);
}

describe('cpu probe on recorded /proc/cpuinfo', () => {
  const cases: [string, string, number | null, string | null][] = [
    ['core2-penryn-e8400', 'x86_64', 1, 'popcnt sse4_2'],
    ['opteron-6174-k10', 'x86_64', 1, 'sse4_1 sse4_2 ssse3'],
    ['nehalem-x5570', 'x86_64', 2, 'avx avx2 bmi1 bmi2 f16c fma abm movbe xsave'],
    ['haswell-e5-2680v3', 'x86_64', 3, 'avx512f avx512bw avx512cd avx512dq avx512vl'],
    ['epyc-7742-zen2', 'x86_64', 3, 'avx512f avx512bw avx512cd avx512dq avx512vl'],
    ['skylake-sp-gold-6130', 'x86_64', 4, null],
    ['neoverse-n1-aarch64', 'aarch64', null, null],
  ];
  for (const [sample, arch, level, missing] of cases) {
    it(`${sample}: ${arch}, x86-64 level ${level}`, async () => {
      const r = await probe('cpu', { SITESONAR_PROC_ROOT: fakeProc(path.join(work, `proc-${sample}`), CPUINFO(sample)) });
      expect(r.EXITCODE).toBe(0);
      expect(r).toMatchObject({ arch, x86_64_level: level, missing_for_next_level: missing, aarch64: arch === 'aarch64' });
      expect(r.cores).toBe(arch === 'aarch64' ? 4 : 2);
      expect(typeof r.model).toBe('string');
    });
  }

  it('memory per core follows the recorded core count', async () => {
    const r = await probe('memory', { SITESONAR_PROC_ROOT: path.join(work, 'proc-neoverse-n1-aarch64') });
    expect(r.cores).toBe(4);
    expect(r.ram_per_core_mb).toBe(Math.floor(r.ram_mb / 4));
    expect(r.ram_mb).toBeGreaterThan(0);
  });
});

describe('os probe on recorded os-release files', () => {
  const cases: [string, object][] = [
    ['almalinux-9', { id: 'almalinux', version_id: '9.4', major: '9', id_like: 'rhel centos fedora', name: 'AlmaLinux 9.4 (Seafoam Ocelot)' }],
    ['centos-7', { id: 'centos', version_id: '7', major: '7', name: 'CentOS Linux 7 (Core)' }],
    ['ubuntu-24.04', { id: 'ubuntu', version_id: '24.04', major: '24', id_like: 'debian', name: 'Ubuntu 24.04.1 LTS' }],
    ['debian-12', { id: 'debian', version_id: '12', id_like: null }],
  ];
  for (const [sample, expected] of cases) {
    it(sample, async () => {
      const r = await probe('os', { SITESONAR_OS_RELEASE: OS_RELEASE(sample) });
      expect(r).toMatchObject({ ...expected, EXITCODE: 0 });
      expect(r.kernel).toBe(fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
      expect(['1', '2', 'hybrid']).toContain(r.cgroup);
    });
  }
});

describe('user namespaces', () => {
  it('this host: enabled, and a real unshare works', async () => {
    const r = await probe('userns');
    expect(r).toMatchObject({ enabled: true, unshare_test: 'ok', apparmor_restricted: false });
  });

  it('recorded proc root of a host with them disabled and AppArmor restricting them', async () => {
    const proc = path.join(work, 'proc-restricted');
    for (const [f, v] of [['sys/user/max_user_namespaces', '0'], ['sys/kernel/unprivileged_userns_clone', '0'], ['sys/kernel/apparmor_restrict_unprivileged_userns', '1']]) {
      fs.mkdirSync(path.dirname(path.join(proc, f)), { recursive: true });
      fs.writeFileSync(path.join(proc, f), `${v}\n`);
    }
    const r = await probe('userns', { SITESONAR_PROC_ROOT: proc });
    expect(r).toMatchObject({ enabled: false, apparmor_restricted: true, max_user_namespaces: 0, unprivileged_userns_clone: 0, apparmor_restrict_unprivileged_userns: 1 });
    expect(r.reason).toContain('user.max_user_namespaces is 0');
  });

  it('really disabled (user.max_user_namespaces=0 inside a user namespace): userns says so and bubblewrap cannot run the image', async () => {
    const image = await makeImage(path.join(work, 'img-userns'));
    const script = `echo 0 > /proc/sys/user/max_user_namespaces && bash ${PROBES}/userns.sh && bash ${PROBES}/container.sh`;
    const r = await execa('unshare', ['-U', '-r', 'sh', '-c', script], { env: { ...process.env, SITESONAR_IMAGE: image, SITESONAR_CVMFS_ROOT: path.join(work, 'none') }, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const [userns, container] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(userns).toMatchObject({ enabled: false, max_user_namespaces: 0, unshare_test: 'failed' });
    expect(container).toMatchObject({ runtime: 'bwrap', run_ok: false });
    expect(container.run_error).toMatch(/namespace/i);
  });
});

describe('container and cvmfs probes', () => {
  let image: string;
  let noWorkdir: string;
  let cvmfs: string;
  beforeAll(async () => {
    image = await makeImage(path.join(work, 'img-ok'));
    noWorkdir = await makeImage(path.join(work, 'img-no-workdir'), { workdir: false });
    cvmfs = path.join(work, 'cvmfs');
    fs.mkdirSync(path.join(cvmfs, 'alice.example.org/sitesonar'), { recursive: true });
  });

  it('runs the image with bubblewrap and the JobAgent binds (/cvmfs, /workdir)', async () => {
    const r = await probe('container', { SITESONAR_IMAGE: image, SITESONAR_CVMFS_ROOT: cvmfs, SITESONAR_RUNTIME: 'bwrap' });
    expect(r).toMatchObject({ EXITCODE: 0, runtime: 'bwrap', run_ok: true, run_exitcode: 0, binds: '/cvmfs /workdir', run_error: null });
    expect(r.runtimes).toContain('bwrap');
    expect(typeof r.overlay_kernel).toBe('boolean');
  });

  it('an image without /workdir fails the run, as every job would', async () => {
    const r = await probe('container', { SITESONAR_IMAGE: noWorkdir, SITESONAR_CVMFS_ROOT: cvmfs, SITESONAR_RUNTIME: 'bwrap' });
    expect(r).toMatchObject({ EXITCODE: 0, run_ok: false });
    expect(r.run_error).toMatch(/workdir/);
  });

  it('a setuid runtime is noticed (bubblewrap installed setuid root, as on hosts without user namespaces)', async () => {
    const bin = path.join(work, 'suid-bin');
    fs.mkdirSync(bin);
    fs.copyFileSync('/usr/bin/bwrap', path.join(bin, 'bwrap'));
    fs.chmodSync(path.join(bin, 'bwrap'), 0o4755);
    const plain = await probe('container', { SITESONAR_IMAGE: image, SITESONAR_CVMFS_ROOT: cvmfs });
    expect(plain.setuid_runtime).toBe(false);
    const suid = await probe('container', { SITESONAR_IMAGE: image, SITESONAR_CVMFS_ROOT: cvmfs, PATH: `${bin}:${process.env.PATH}` });
    expect(suid).toMatchObject({ setuid_runtime: true, runtime: 'bwrap' });
  });

  it('a missing image is reported, not crashed on', async () => {
    const r = await probe('container', { SITESONAR_IMAGE: path.join(work, 'nope'), SITESONAR_RUNTIME: 'bwrap' });
    expect(r).toMatchObject({ run_ok: false, run_error: `image not found: ${path.join(work, 'nope')}` });
  });

  it('cvmfs: a mounted repository and a host without /cvmfs', async () => {
    const ok = await probe('cvmfs', { SITESONAR_CVMFS_ROOT: cvmfs, SITESONAR_CVMFS_REPOS: 'alice.example.org,sft.cern.ch' });
    expect(ok).toMatchObject({ EXITCODE: 0, root_present: true, mounted: ['alice.example.org'] });
    expect(ok.repositories).toEqual([{ name: 'alice.example.org', mounted: true, revision: null }, { name: 'sft.cern.ch', mounted: false, revision: null }]);
    const none = await probe('cvmfs', { SITESONAR_CVMFS_ROOT: path.join(work, 'no-cvmfs') });
    expect(none).toMatchObject({ EXITCODE: 0, root_present: false, mounted: [] });
  });

  it('cvmfs: cache settings from the client configuration', async () => {
    const conf = path.join(work, 'etc-cvmfs');
    fs.mkdirSync(conf, { recursive: true });
    fs.writeFileSync(path.join(conf, 'default.conf'), 'CVMFS_CACHE_BASE=/nowhere\nCVMFS_QUOTA_LIMIT=4000\n');
    fs.writeFileSync(path.join(conf, 'default.local'), `CVMFS_CACHE_BASE="${work}"\nCVMFS_QUOTA_LIMIT=20000\n`);
    const r = await probe('cvmfs', { SITESONAR_CVMFS_ROOT: cvmfs, SITESONAR_CVMFS_CONFIG_DIR: conf });
    expect(r).toMatchObject({ cache_base: work, cache_limit_mb: 20000 });
    expect(r.cache_free_mb).toBeGreaterThan(0);
  });
});

describe('network, scratch, gpu', () => {
  let server: net.Server;
  let port: number;
  beforeAll(async () => {
    server = net.createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(0, '::', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => server.close());

  it('reaches a host over IPv4 and over IPv6, and reports a closed port', async () => {
    const v4 = await probe('network', { SITESONAR_NETWORK_HOST: '127.0.0.1', SITESONAR_NETWORK_PORT: String(port) });
    expect(v4.ipv4).toEqual({ resolved: true, address: '127.0.0.1', reached: true });
    expect(v4.ipv6).toMatchObject({ resolved: false, reached: false });
    const v6 = await probe('network', { SITESONAR_NETWORK_HOST: '::1', SITESONAR_NETWORK_PORT: String(port) });
    expect(v6.ipv6).toEqual({ resolved: true, address: '::1', reached: true });
    const closed = await probe('network', { SITESONAR_NETWORK_HOST: '127.0.0.1', SITESONAR_NETWORK_PORT: '1' });
    expect(closed.ipv4).toMatchObject({ resolved: true, reached: false });
  });

  it('scratch measures $TMPDIR and the job directory; gpu finds none here', async () => {
    const r = await probe('scratch', { TMPDIR: work, SITESONAR_WORKDIR: work });
    expect(r.tmpdir).toMatchObject({ path: work, writable: true });
    expect(r.tmpdir.free_mb).toBeGreaterThan(0);
    expect(r.workdir.total_mb).toBe(r.tmpdir.total_mb); // the same filesystem (free space moves while other suites write)
    const missing = await probe('scratch', { SITESONAR_WORKDIR: path.join(work, 'gone') });
    expect(missing.workdir).toMatchObject({ free_mb: null });
    const gpu = await probe('gpu', { SITESONAR_DEV_ROOT: path.join(work, 'dev') });
    expect(gpu).toMatchObject({ EXITCODE: 0, nvidia_devices: 0, has_gpu: false });
  });
});

describe('POSIX shell', () => {
  it('every probe runs under dash (POSIX sh, not bash) to one JSON object with nothing on stderr', async () => {
    const image = await makeImage(path.join(work, 'img-dash'));
    for (const f of fs.readdirSync(PROBES).filter((n) => n.endsWith('.sh'))) {
      const r = await execa('dash', [path.join(PROBES, f)], { env: { ...process.env, SITESONAR_IMAGE: image, SITESONAR_NETWORK_HOST: '127.0.0.1', SITESONAR_NETWORK_PORT: '1' }, reject: false, cwd: work });
      expect([f, r.exitCode, r.stderr]).toEqual([f, 0, '']);
      expect(JSON.parse(r.stdout), f).toBeTypeOf('object');
    }
  });
});

describe('runner', () => {
  it('kills a probe that hangs at its limit (with what it started) and reports it; reports output that is not one JSON object', async () => {
    const dir = path.join(work, 'bad-probes');
    fs.mkdirSync(dir);
    const pidFile = path.join(work, 'hang.pid');
    fs.writeFileSync(path.join(dir, 'hang.sh'), `sleep 300 &\necho $! > ${pidFile}\nwait\n`);
    fs.writeFileSync(path.join(dir, 'chatty.sh'), 'echo "not json"\n');
    fs.writeFileSync(path.join(dir, 'list.sh'), 'echo "[1,2]"\n');
    fs.writeFileSync(path.join(dir, 'fine.sh'), 'echo \'{"a": 1,\'\necho \'"b": "x"}\'\nexit 3\n');
    const t0 = Date.now();
    const up = await runProbes({ probesDir: dir, timeoutMs: 1500, site: 'T', hostname: 'n1' });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(up.probes.hang).toMatchObject({ EXITCODE: 137, TIMED_OUT: true, ERROR: 'killed at its limit of 1.5 s' });
    expect(up.probes.hang.EXECUTION_TIME).toBeGreaterThanOrEqual(1400);
    // what the probe started is gone too (a zombie waiting for its new parent to reap it counts as gone)
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    const running = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 40 && running(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(running()).toBe(false);
    expect(up.probes.chatty.ERROR).toMatch(/not one JSON object/);
    expect(up.probes.list.ERROR).toMatch(/not an object/);
    expect(up.probes.fine).toMatchObject({ a: 1, b: 'x', EXITCODE: 3 });
  });

  it('all probes on this node: one JSON object each, exit 0, within 10 s', async () => {
    const image = await makeImage(path.join(work, 'img-all'));
    const t0 = Date.now();
    const up = await runProbes({ probesDir: PROBES, image, cvmfsRoot: path.join(work, 'cvmfs'), cvmfsRepos: ['alice.example.org'], networkHost: '127.0.0.1', networkPort: 1, site: 'CERN', ce: 'CERN-CE', hostname: 'wn001' });
    const ms = Date.now() - t0;
    expect(Object.keys(up.probes).sort()).toEqual(['container', 'cpu', 'cvmfs', 'gpu', 'memory', 'network', 'os', 'scratch', 'userns']);
    for (const [n, r] of Object.entries(up.probes)) {
      expect(r.EXITCODE, `${n}: ${r.ERROR}`).toBe(0);
      expect(r.ERROR, n).toBeUndefined();
    }
    expect(up.probes.container.run_ok).toBe(true);
    expect(up).toMatchObject({ schema: 'gridforge-sitesonar/1', hostname: 'wn001', site: 'CERN', ce: 'CERN-CE' });
    expect(ms).toBeLessThan(10_000);
  });
});
