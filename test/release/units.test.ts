/**
 * Small checks without a repository: the project's ELF reader against binutils' readelf on real
 * files, the native loader RPATH writer against readelf/patchelf, and the CI templates (valid YAML,
 * tag rules that accept versions and reject other tags, the release command).
 */
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFile, lstat, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { readElf } from '../../release/java32/elf.ts';
import { setRpathInPlace } from '../../release/java32/patch-loader.ts';
import { copyJdk } from '../../release/java32/copy-jdk.ts';
import { JALIEN_VERSION_RE } from '../../release/jalien/version.ts';
import { ROOT, i386Debs } from './helpers.ts';

async function readelfFacts(file: string) {
  const d = (await execa('readelf', ['-d', file], { reject: false })).stdout;
  const l = (await execa('readelf', ['-l', file], { reject: false })).stdout;
  return {
    needed: [...d.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
    soname: /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(d)?.[1],
    rpath: /\(RPATH\)\s+Library rpath: \[([^\]]*)\]/.exec(d)?.[1],
    runpath: /\(RUNPATH\)\s+Library runpath: \[([^\]]*)\]/.exec(d)?.[1],
    interpreter: /Requesting program interpreter: ([^\]]+)\]/.exec(l)?.[1],
  };
}

describe('ELF reader', () => {
  it('agrees with readelf on host executables and libraries', async () => {
    const files = ['/bin/bash', '/usr/bin/java', '/lib/x86_64-linux-gnu/libc.so.6', '/usr/bin/patchelf'];
    const jvm = (await readdir('/usr/lib/jvm')).find((n) => /^java-17-openjdk-amd64$/.test(n));
    if (jvm) files.push(`/usr/lib/jvm/${jvm}/bin/java`, `/usr/lib/jvm/${jvm}/lib/server/libjvm.so`, `/usr/lib/jvm/${jvm}/lib/libnet.so`);
    for (const f of files) {
      const mine = await readElf(f);
      expect(mine, f).toBeDefined();
      const ref = await readelfFacts(f);
      expect(mine!.needed, f).toEqual(ref.needed);
      expect(mine!.soname, f).toBe(ref.soname);
      expect(mine!.rpath, f).toBe(ref.rpath);
      expect(mine!.runpath, f).toBe(ref.runpath);
      expect(mine!.interpreter, f).toBe(ref.interpreter);
    }
    expect(await readElf(join(ROOT, 'package.json'))).toBeUndefined();
  });

  it('writes a DT_RPATH in place (i386 loader from the packages) that readelf and patchelf read back', async () => {
    const dir = join(tmpdir(), `gfrel-units-${process.pid}`);
    await execa('mkdir', ['-p', dir]);
    try {
      const { libs } = await i386Debs();
      await execa('dpkg-deb', ['-x', libs.find((d) => /\/libc6_/.test(d))!, join(dir, 'root')]);
      const f = join(dir, 'ld-linux.so.2');
      await copyFile(join(dir, 'root/lib/i386-linux-gnu/ld-linux.so.2'), f);
      const before = await readFile(f);
      const buf = Buffer.from(before);
      setRpathInPlace(buf, '/opt/gfrel/lib', f);
      expect(buf.length).toBe(before.length);
      await writeFile(f, buf);
      expect((await readelfFacts(f)).rpath).toBe('/opt/gfrel/lib');
      expect((await execa('patchelf', ['--print-rpath', f])).stdout.trim()).toBe('/opt/gfrel/lib');
      expect((await readElf(f))!.rpath).toBe('/opt/gfrel/lib');
      expect((await readElf(f))!.soname).toBe('ld-linux.so.2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CI templates', () => {
  const accepted = ['2.1.4-1', '1.9.0-12', '2.1.10-1'];
  const refused = ['v1.0', '3.0.0-1', '2.1.4', 'release-2.1.4-1'];

  it('GitLab CI: valid YAML, runs only for version tags, plans then releases', async () => {
    const doc = loadYaml(await readFile(join(ROOT, 'templates/ci/gitlab-ci.yml'), 'utf8')) as any;
    const rule: string = doc.workflow.rules[0].if;
    const m = /=~ \/(.*)\/'?$/.exec(rule.trim());
    expect(m, rule).not.toBeNull();
    const re = new RegExp(m![1]);
    expect(re.source).toBe(JALIEN_VERSION_RE.source);
    for (const t of accepted) expect(re.test(t), t).toBe(true);
    for (const t of refused) expect(re.test(t), t).toBe(false);
    const script: string[] = doc.release.script;
    expect(script.findIndex((s) => s.includes('release --from-git --dry-run'))).toBeLessThan(script.findIndex((s) => /release --from-git --json/.test(s)));
    expect(doc.release.resource_group).toBeDefined();
  });

  it('GitHub Actions: valid YAML, tag filter + exact check, full history for git describe', async () => {
    const doc = loadYaml(await readFile(join(ROOT, 'templates/ci/github-release.yml'), 'utf8')) as any;
    expect(doc.on.push.tags.length).toBeGreaterThan(0);
    const steps = doc.jobs.release.steps as any[];
    expect(steps[0].with['fetch-depth']).toBe(0);
    const check: string = steps.find((s) => /JAliEn version/.test(s.name ?? '')).run;
    for (const t of accepted) expect((await execa('bash', ['-c', check], { env: { GITHUB_REF_NAME: t }, reject: false })).exitCode, t).toBe(0);
    for (const t of refused) expect((await execa('bash', ['-c', check], { env: { GITHUB_REF_NAME: t }, reject: false })).exitCode, t).not.toBe(0);
    const runs = steps.map((s) => s.run ?? '').join('\n');
    expect(runs).toMatch(/release --from-git --dry-run[\s\S]*release --from-git --json/);
  });
});

describe('JDK copy', () => {
  it('resolves links into /etc inside the package, never from the host', async () => {
    const dir = join(tmpdir(), `gfrel-copy-${process.pid}`);
    try {
      const root = join(dir, 'root');
      const home = join(root, 'usr/lib/jvm/jdk');
      await mkdir(join(home, 'lib'), { recursive: true });
      await mkdir(join(root, 'etc/jdk/dir'), { recursive: true });
      await writeFile(join(root, 'etc/jdk/jvm.cfg'), '-client KNOWN\n');
      await writeFile(join(root, 'etc/jdk/dir/inside'), 'x');
      // a link inside the resolved directory pointing at a host file must not pull it in
      await symlink('/etc/hostname', join(root, 'etc/jdk/dir/host-file'));
      await symlink('/etc/jdk/jvm.cfg', join(home, 'lib/jvm.cfg'));
      await symlink('/etc/jdk/dir', join(home, 'lib/confdir'));
      await symlink('/etc/os-release', join(home, 'lib/host-only'));
      await symlink('jvm.cfg', join(home, 'lib/relative'));
      const dest = join(dir, 'out');
      const r = await copyJdk(home, dest, { roots: [root] });
      expect((await lstat(join(dest, 'lib/jvm.cfg'))).isFile()).toBe(true);
      expect(await readFile(join(dest, 'lib/jvm.cfg'), 'utf8')).toBe('-client KNOWN\n');
      expect(await readFile(join(dest, 'lib/confdir/inside'), 'utf8')).toBe('x');
      expect(await readlink(join(dest, 'lib/relative'))).toBe('jvm.cfg');
      await expect(lstat(join(dest, 'lib/confdir/host-file'))).rejects.toThrow();
      await expect(lstat(join(dest, 'lib/host-only'))).rejects.toThrow();
      expect(r.dropped.join('\n')).toMatch(/lib\/host-only -> \/etc\/os-release/);
      expect(r.dropped.join('\n')).toMatch(/host-file -> \/etc\/hostname/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
