/**
 * The 32-bit Java runtime, end to end: Debian i386 packages (fetched with apt-get download, never
 * installed) -> `gridforge release java32` into a real repository with the mount prefix of a test
 * checkout -> checkout at that prefix -> patches read back with readelf/patchelf -> java runs with
 * LD_LIBRARY_PATH pointing at incompatible libcs -> VmPeak against the host's 64-bit JVM -> Java and
 * JAliEn modules -> the JobAgent startup script run against the checkout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFile, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildJobRunnerJar, checkoutRepo, gridforge, i386Debs, initRepo, moduleShell, removeDir, revisionOf, tempDir } from './helpers.ts';

const ARCH = 'el9-x86_64';
const REPO_NAME = 'alice.gfrel.local';

let dir: string;
let repo: string;
let prefix: string;
let jdkDir: string;
let libDir: string;
let jarDir: string;
let result: any;
let debs: { jdk: string; libs: string[] };
/** Original (unpatched) loader and launcher from the packages, for differential checks. */
let origRoot: string;

const sh = async (cmd: string, env: Record<string, string> = {}) => {
  const r = await execa('bash', ['-c', cmd], { reject: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
};

/** Run a program directly (no shell) with exactly this environment. */
const exec = async (argv: string[], env: Record<string, string> = {}) => {
  const r = await execa(argv[0], argv.slice(1), { reject: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
};

beforeAll(async () => {
  dir = await tempDir('java32');
  repo = await initRepo(dir, REPO_NAME);
  prefix = join(dir, 'cvmfs', REPO_NAME);
  debs = await i386Debs();
  const r = await gridforge(['release', 'java32', '--jdk', debs.jdk, '--libs', ...debs.libs, '--repo', repo, '--mount-prefix', prefix, '--arch', ARCH, '--json']);
  if (r.code !== 0) throw new Error(`release java32 failed (${r.code}): ${r.stderr}`);
  result = JSON.parse(r.stdout);
  jarDir = join(dir, 'jar');
  const jar = await buildJobRunnerJar(jarDir, 'v1');
  const j = await gridforge(['release', 'jalien', '2.1.10-1', '--jar', jar, '--repo', repo, '--arch', ARCH]);
  if (j.code !== 0) throw new Error(`release jalien failed: ${j.stderr}`);
  await mkdir(join(dir, 'cvmfs'), { recursive: true });
  await checkoutRepo(repo, prefix);
  jdkDir = join(prefix, 'java/JDKs/i686', result.runtime.name);
  libDir = join(jdkDir, 'bundled-lib');
  // Incompatible libraries for LD_LIBRARY_PATH: the host's 64-bit libc, and an i386 library that is
  // not libc at all (the bundled libz) under libc's names.
  await mkdir(join(dir, 'bad64'));
  await copyFile('/lib/x86_64-linux-gnu/libc.so.6', join(dir, 'bad64', 'libc.so.6'));
  await mkdir(join(dir, 'bad32'));
  for (const n of ['libc.so.6', 'libm.so.6', 'libstdc++.so.6', 'libgcc_s.so.1']) await copyFile(join(libDir, 'libz.so.1'), join(dir, 'bad32', n));
  origRoot = join(dir, 'orig');
  await mkdir(origRoot);
  await execa('dpkg-deb', ['-x', debs.libs.find((d) => /\/libc6_/.test(d))!, origRoot]);
  await execa('dpkg-deb', ['-x', debs.jdk, origRoot]);
}, 600_000);

afterAll(async () => {
  await removeDir(dir);
});

describe('release java32', () => {
  it('publishes jdk-<version> with jdk-latest, the Java modulefile and a bundled library closure', async () => {
    expect(result.runtime.version).toMatch(/^17\./);
    expect(result.publish).toMatchObject({ status: 'published', latest: result.runtime.name, path: `java/JDKs/i686/${result.runtime.name}` });
    expect(await readlink(join(prefix, 'java/JDKs/i686/jdk-latest'))).toBe(result.runtime.name);
    const libs = (await readdir(libDir)).sort();
    for (const n of ['ld-linux.so.2', 'libc.so.6', 'libm.so.6', 'libz.so.1', 'libstdc++.so.6', 'libgcc_s.so.1', 'libnss_dns.so.2', 'libnss_files.so.2', 'libresolv.so.2']) expect(libs).toContain(n);
    for (const n of libs) {
      const h = await execa('readelf', ['-h', join(libDir, n)]);
      expect(h.stdout, n).toMatch(/Class:\s+ELF32/);
      expect(h.stdout, n).toMatch(/Machine:\s+Intel 80386/);
    }
    // Desktop-only libraries nobody shipped are reported, not silently dropped.
    expect(result.runtime.unresolved.map((u: any) => u.name)).toContain('libfreetype.so.6');
    expect(result.runtime.unresolved.every((u: any) => !u.core)).toBe(true);
  });

  it('sets interpreter and RPATH (not RUNPATH) as read back by patchelf and readelf', async () => {
    const interp = join(libDir, 'ld-linux.so.2');
    expect(result.runtime.interpreter).toBe(interp);
    for (const exe of ['bin/java', 'bin/keytool', 'lib/jspawnhelper', 'lib/jexec']) {
      const p = await execa('patchelf', ['--print-interpreter', join(jdkDir, exe)]);
      expect(p.stdout.trim(), exe).toBe(interp);
      const rp = await execa('patchelf', ['--print-rpath', join(jdkDir, exe)]);
      expect(rp.stdout.trim().split(':')[0], exe).toBe(libDir);
    }
    expect((await execa('patchelf', ['--print-rpath', join(jdkDir, 'bin/java')])).stdout.trim()).toBe(`${libDir}:$ORIGIN:$ORIGIN/../lib`);
    for (const lib of ['lib/server/libjvm.so', 'lib/client/libjvm.so', 'bundled-lib/libnss_dns.so.2']) {
      const d = await execa('readelf', ['-d', join(jdkDir, lib)]);
      expect(d.stdout, lib).toContain(`(RPATH)                      Library rpath: [${libDir}]`);
      expect(d.stdout, lib).not.toContain('RUNPATH');
    }
    // The loader: no LD_LIBRARY_PATH (or host cache/preload path) string left; glibc 2.36 refuses a
    // DT_RPATH in its own loader, so none is written (and the report says why).
    const ld = await readFile(interp);
    for (const s of ['LD_LIBRARY_PATH', '/etc/ld.so.cache', '/etc/ld.so.preload']) expect(ld.includes(Buffer.from(s)), s).toBe(false);
    expect(ld.includes(Buffer.from('GRIDFORGE=NOLLP'))).toBe(true);
    expect(result.runtime.loader.inlinedCompares).toBeGreaterThan(0);
    expect(result.runtime.loader.strings['system search directories']).toBeGreaterThan(0);
    const ldDyn = await execa('readelf', ['-d', interp]);
    if (result.runtime.loader.rpath) expect(ldDyn.stdout).toContain(`Library rpath: [${libDir}]`);
    else expect(result.runtime.loader.rpathNote).toMatch(/refuses a loader with DT_RPATH/);
  });

  it('resolves the /etc links of the package into real files (jvm.cfg with -client, security, cacerts)', async () => {
    const check = async (rel: string) => {
      const st = await lstat(join(jdkDir, rel));
      expect(st.isFile(), rel).toBe(true);
      expect(st.size, rel).toBeGreaterThan(0);
    };
    for (const rel of ['lib/jvm.cfg', 'conf/security/java.security', 'lib/security/cacerts', 'lib/security/default.policy', 'conf/net.properties']) await check(rel);
    expect(await readFile(join(jdkDir, 'lib/jvm.cfg'), 'utf8')).toMatch(/^-client KNOWN/m);
    // No link in the published JDK points outside it.
    const walk = async (d: string): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) out.push(...(await walk(p)));
        else if (e.isSymbolicLink() && (await readlink(p)).startsWith('/')) out.push(p);
      }
      return out;
    };
    expect(await walk(jdkDir)).toEqual([]);
  });

  it('runs from the checkout with LD_LIBRARY_PATH pointing at incompatible libcs (the host is never consulted)', async () => {
    const java = join(jdkDir, 'bin/java');
    for (const bad of ['bad64', 'bad32']) {
      const v = await exec([java, '-version'], { LD_LIBRARY_PATH: join(dir, bad) });
      expect(v.code, `${bad}: ${v.stderr}`).toBe(0);
      expect(v.stderr).toMatch(/openjdk version "17\./);
      const c = await exec([java, '-client', '-Xms16M', '-Xmx64M', '-cp', join(jarDir, 'alien-users.jar'), 'alien.site.JobRunner'], { LD_LIBRARY_PATH: join(dir, bad) });
      expect(c.code, `${bad}: ${c.stderr}`).toBe(0);
      expect(c.stdout).toMatch(/JobRunner v1 model=32 arch=i386/);
    }
    // The same bad directory does break the unpatched loader, so the run above proves something.
    const origLd = join(origRoot, 'lib/i386-linux-gnu/ld-linux.so.2');
    const origJava = (await readdir(join(origRoot, 'usr/lib/jvm'))).filter((n) => /^java-17-openjdk-i386$/.test(n)).map((n) => join(origRoot, 'usr/lib/jvm', n, 'bin/java'))[0];
    // (run directly, not through a shell: a 64-bit shell would itself search LD_LIBRARY_PATH)
    const broken = await exec([origLd, origJava, '-version'], { LD_LIBRARY_PATH: `${join(dir, 'bad32')}:${libDir}` });
    expect(broken.code).not.toBe(0);
    // And the patched loader never even searches LD_LIBRARY_PATH (the unpatched one does).
    const marker = join(dir, 'ld-library-path-marker');
    const patchedDbg = await exec([join(libDir, 'ld-linux.so.2'), origJava, '-version'], { LD_LIBRARY_PATH: marker, LD_DEBUG: 'libs' });
    expect(patchedDbg.stderr).toMatch(/find library=libz\.so\.1/);
    expect(patchedDbg.stderr).not.toContain(marker);
    // Nor the host's cache or system library directories.
    expect(patchedDbg.stderr).toMatch(/search path=\/dev\/null\/nohostlib\/.*\(system search path\)/);
    expect(patchedDbg.stderr).not.toMatch(/\/lib\/i386-linux-gnu|search cache=\/etc/);
    const origDbg = await exec([origLd, origJava, '-version'], { LD_LIBRARY_PATH: marker, LD_DEBUG: 'libs' });
    expect(origDbg.stderr).toContain(marker);
    expect(result.runtime.ldLibraryPathIgnored).toBe(true);
  });

  it('reports VmPeak of the 32-bit JVM against the host 64-bit JVM running the same program', async () => {
    const flags = '-Xms16M -Xmx64M';
    const cp = `-cp ${join(jarDir, 'alien-users.jar')} alien.site.JobRunner`;
    const r32 = await sh(`${join(jdkDir, 'bin/java')} -client ${flags} ${cp}`);
    const r64 = await sh(`java ${flags} ${cp}`);
    expect(r32.code, r32.stderr).toBe(0);
    expect(r64.code, r64.stderr).toBe(0);
    expect(r32.stdout).toMatch(/model=32/);
    expect(r64.stdout).toMatch(/model=64/);
    const peak = (s: string) => Number(/VmPeakKiB=(\d+)/.exec(s)?.[1]);
    const p32 = peak(r32.stdout);
    const p64 = peak(r64.stdout);
    console.log(`VmPeak with ${flags}: 32-bit JVM ${(p32 / 1024).toFixed(0)} MiB, host 64-bit JVM ${(p64 / 1024).toFixed(0)} MiB (ratio ${(p64 / p32).toFixed(1)})`);
    expect(p32).toBeGreaterThan(0);
    expect(p64).toBeGreaterThan(p32);
    // Without heap flags the 64-bit JVM sizes its reservations from the host's RAM.
    const n32 = peak((await sh(`${join(jdkDir, 'bin/java')} -client ${cp}`)).stdout);
    const n64 = peak((await sh(`java ${cp}`)).stdout);
    console.log(`VmPeak without heap flags: 32-bit JVM ${(n32 / 1024).toFixed(0)} MiB, host 64-bit JVM ${(n64 / 1024).toFixed(0)} MiB (ratio ${(n64 / n32).toFixed(1)})`);
    expect(n64).toBeGreaterThan(n32);
  });

  it('Environment Modules: Java/<version> is the default Java, and JAliEn loads it', async () => {
    const mp = join(prefix, ARCH, 'Modules/modulefiles');
    const r = await moduleShell(`module use ${mp}\nmodule load JAliEn || exit 3\necho "LOADED=$LOADEDMODULES"\necho "JAVA=$(command -v java)"\njalien alien.site.JobRunner`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Java/${result.runtime.version}`);
    expect(r.stdout).toContain('JAliEn/2.1.10-1');
    expect(r.stdout).toContain(`JAVA=${join(jdkDir, 'bin/java')}`);
    expect(r.stdout).toMatch(/JobRunner v1 model=32 .*jalien=2\.1\.10-1/);
  });

  it('renders the JobAgent startup script from a site file and runs it against the checkout', async () => {
    const site = join(dir, 'site.yaml');
    await writeFile(site, `site: GFREL-SITE
host:
  address: vobox-host.example.org
  hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
vobox:
  name: gfrel-vobox
  image: gridforge/vobox-slurm:debian-slurm-0.1.0
  hostname: voboxgfrel.example.org
  network: { name: sitenet, parent: eth0, subnet: 10.1.2.0/24, gateway: 10.1.2.1, ip: 10.1.2.20, mac: "02:42:0a:01:02:14" }
  services: [ce, cron]
  cvmfs: { repositories: [${REPO_NAME}], mount: ${join(dir, 'cvmfs')} }
  jalien: { version: 2.1.10-1 }
  volumes: { home: /srv/gfrel/home, gridSecurity: /srv/gfrel/grid-security }
`);
    const out = join(dir, 'agent.startup');
    const r = await gridforge(['render', 'jobagent-startup', '--site', site, '--output', out, '--env', 'closeSE=ALICE::GFREL::SE']);
    expect(r.code, r.stderr).toBe(0);
    const script = await readFile(out, 'utf8');
    expect(script).toContain(`source <( ${prefix}/bin/alienv printenv JAliEn/2.1.10-1 )`);
    expect(script).toContain(`exec ${prefix}/java/JDKs/i686/jdk-latest/bin/java -client -Xms16M -Xmx64M -Djdk.lang.Process.launchMechanism=vfork`);
    expect(script).toContain("export CE='ALICE::GFREL-SITE::CE'");
    const work = join(dir, 'wn-workdir');
    await mkdir(work);
    // Run it the way a batch system does: a plain environment, the job's work directory as cwd.
    const run = await execa('bash', [out], { cwd: work, reject: false, extendEnv: false, env: { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: join(dir, 'bad32') } });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/JobRunner v1 model=32 arch=i386 .*site=GFREL-SITE CE=ALICE::GFREL-SITE::CE jalien=2\.1\.10-1/);

    // 64-bit requested: no 32-bit path, no -client; a bad site file is refused with exit 2.
    const r64 = await gridforge(['render', 'jobagent-startup', '--site', site, '--java64', '--xmx', '128M']);
    expect(r64.code, r64.stderr).toBe(0);
    expect(r64.stdout).toMatch(/^exec java -Xms16M -Xmx128M /m);
    expect(r64.stdout).not.toContain('i686');
    await writeFile(join(dir, 'bad-site.yaml'), 'site: X\nvobox: {}\n');
    const bad = await gridforge(['render', 'jobagent-startup', '--site', join(dir, 'bad-site.yaml')]);
    expect(bad.code).toBe(2);
  });

  it('re-releasing the identical runtime is a no-op; a different one is refused without --force', async () => {
    const before = await revisionOf(repo);
    const again = await gridforge(['release', 'java32', '--jdk', debs.jdk, '--libs', ...debs.libs, '--repo', repo, '--mount-prefix', prefix, '--arch', ARCH, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).publish.status).toBe('unchanged');
    expect(await revisionOf(repo)).toBe(before);
    // Another mount prefix changes every patched path: same version, different content.
    const other = await gridforge(['release', 'java32', '--jdk', debs.jdk, '--libs', ...debs.libs, '--repo', repo, '--mount-prefix', '/cvmfs/other.example.org', '--arch', ARCH]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/already published with different content \(.*jdk-17[^ ]*\/(bin|lib)\/.*--force/s);
    expect(await revisionOf(repo)).toBe(before);
  });
});
