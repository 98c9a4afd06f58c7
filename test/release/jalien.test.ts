/**
 * JAliEn releases against a real repository, read back through a checkout by Debian's Environment
 * Modules (modulecmd) and the published alienv: explicit defaults, default switching as one
 * revision, idempotent and conflicting re-releases, version validation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildJobRunnerJar, checkoutRepo, gridforge, initRepo, moduleShell, removeDir, revisionOf, tempDir } from './helpers.ts';

const ARCH = 'el9-x86_64';
let dir: string;
let repo: string;
let jar: string;
let otherJar: string;

async function loadedDefault(checkout: string): Promise<{ list: string; root: string; code: number }> {
  const r = await moduleShell(`module use ${checkout}/${ARCH}/Modules/modulefiles\nmodule load JAliEn || exit 3\necho "LOADED=$LOADEDMODULES"\necho "ROOT=$JALIEN_ROOT"`);
  return { list: /LOADED=(.*)/.exec(r.stdout)?.[1] ?? '', root: /ROOT=(.*)/.exec(r.stdout)?.[1] ?? '', code: r.code };
}

beforeAll(async () => {
  dir = await tempDir('jalien');
  repo = await initRepo(dir);
  jar = await buildJobRunnerJar(join(dir, 'jar1'), 'v1');
  otherJar = await buildJobRunnerJar(join(dir, 'jar2'), 'v2');
});

afterAll(async () => {
  await removeDir(dir);
});

describe('release jalien', () => {
  it('publishes package, modulefile and explicit default; the module default follows the newest release, not dictionary order', async () => {
    const r1 = await gridforge(['release', 'jalien', '2.1.9-1', '--jar', jar, '--repo', repo, '--arch', ARCH, '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ status: 'published', default: '2.1.9-1' });
    const r2 = await gridforge(['release', 'jalien', '2.1.10-1', '--jar', jar, '--repo', repo, '--arch', ARCH, '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ status: 'published', default: '2.1.10-1' });

    const co = join(dir, 'co1');
    await checkoutRepo(repo, co);
    // Layout
    const pkg = join(co, ARCH, 'Packages/JAliEn/2.1.10-1');
    expect((await stat(join(pkg, 'bin/jalien'))).mode & 0o111).not.toBe(0);
    expect(await readFile(join(pkg, 'version'), 'utf8')).toBe('2.1.10-1\n');
    expect((await readFile(join(pkg, 'lib/alien-users.jar'))).equals(await readFile(jar))).toBe(true);
    const dotVersion = await readFile(join(co, ARCH, 'Modules/modulefiles/JAliEn/.version'), 'utf8');
    expect(dotVersion).toMatch(/^#%Module/);
    expect(dotVersion).toMatch(/set ModulesVersion "2\.1\.10-1"/);

    // Environment Modules resolves `JAliEn` to the explicit default (dictionary order would pick 2.1.9-1).
    const loaded = await loadedDefault(co);
    expect(loaded.code).toBe(0);
    expect(loaded.list).toBe('JAliEn/2.1.10-1');
    expect(loaded.root).toBe(pkg);
    const env = await moduleShell(`module use ${co}/${ARCH}/Modules/modulefiles\nmodule load JAliEn/2.1.9-1\necho "PATHJ=$(command -v jalien)"\necho "CP=$CLASSPATH"\necho "V=$JALIEN_VERSION"`);
    expect(env.stdout).toContain(`PATHJ=${join(co, ARCH, 'Packages/JAliEn/2.1.9-1/bin/jalien')}`);
    expect(env.stdout).toContain(`CP=${join(co, ARCH, 'Packages/JAliEn/2.1.9-1/lib/alien-users.jar')}`);
    expect(env.stdout).toContain('V=2.1.9-1');

    // The published alienv: the CE's `source <(alienv printenv JAliEn)` and the launcher run the jar.
    const run = await execa('bash', ['-c', `source <(${co}/bin/alienv printenv JAliEn) && jalien alien.site.JobRunner`], { reject: false, env: { site: 'GFREL' } });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/JobRunner v1 model=64 .* site=GFREL .*jalien=2\.1\.10-1/);
    const bad = await execa(join(co, 'bin/alienv'), ['printenv', 'JAliEn/2.9.9-1'], { reject: false });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/JAliEn\/2\.9\.9-1/);
  });

  it('`release default` switches back as exactly one new revision', async () => {
    const before = await revisionOf(repo);
    const r = await gridforge(['release', 'default', '2.1.9-1', '--repo', repo, '--arch', ARCH, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'switched', previous: '2.1.10-1', version: '2.1.9-1' });
    expect(await revisionOf(repo)).toBe(before + 1);
    const co = join(dir, 'co2');
    await checkoutRepo(repo, co);
    expect((await loadedDefault(co)).list).toBe('JAliEn/2.1.9-1');
    // Switching to the current default is a no-op; an unpublished version is refused (exit 2).
    const same = await gridforge(['release', 'default', '2.1.9-1', '--repo', repo, '--arch', ARCH]);
    expect(same.code).toBe(0);
    expect(await revisionOf(repo)).toBe(before + 1);
    const missing = await gridforge(['release', 'default', '2.1.11-1', '--repo', repo, '--arch', ARCH]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/2\.1\.11-1 is not published .*2\.1\.10-1, 2\.1\.9-1/s);
  });

  it('re-releasing identical content is a no-op (no new revision)', async () => {
    const before = await revisionOf(repo);
    const r = await gridforge(['release', 'jalien', '2.1.10-1', '--jar', jar, '--repo', repo, '--arch', ARCH, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'unchanged', default: '2.1.9-1' });
    expect(await revisionOf(repo)).toBe(before);
  });

  it('refuses different content under an existing version (exit 2, nothing written) unless --force', async () => {
    const before = await revisionOf(repo);
    const d = join(dir, 'conflict');
    await mkdir(d, { recursive: true });
    await copyFile(otherJar, join(d, 'alien-users.jar'));
    const r = await gridforge(['release', 'jalien', '2.1.10-1', '--jar', join(d, 'alien-users.jar'), '--repo', repo, '--arch', ARCH]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2\.1\.10-1 is already published with different content .*lib\/alien-users\.jar \(content\).*--force/s);
    expect(await revisionOf(repo)).toBe(before);

    const forced = await gridforge(['release', 'jalien', '2.1.10-1', '--jar', join(d, 'alien-users.jar'), '--repo', repo, '--arch', ARCH, '--force', '--no-default', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ status: 'replaced', default: '2.1.9-1' });
    expect(await revisionOf(repo)).toBe(before + 1);
    const co = join(dir, 'co3');
    await checkoutRepo(repo, co);
    expect((await readFile(join(co, ARCH, 'Packages/JAliEn/2.1.10-1/lib/alien-users.jar'))).equals(await readFile(otherJar))).toBe(true);
    expect((await loadedDefault(co)).list).toBe('JAliEn/2.1.9-1');
  });

  it('refuses invalid versions and missing jars with exit 2 before touching the repository', async () => {
    const before = await revisionOf(repo);
    for (const v of ['3.0.0-1', '2.1.10', 'v2.1.10-1', '2.1.10-x', '2.1;rm -rf /-1']) {
      const r = await gridforge(['release', 'jalien', v, '--jar', jar, '--repo', repo, '--arch', ARCH]);
      expect(r.code, v).toBe(2);
      expect(r.stderr).toMatch(/is not a JAliEn version/);
    }
    const noJar = await gridforge(['release', 'jalien', '2.1.11-1', '--jar', join(dir, 'nope.jar'), '--repo', repo, '--arch', ARCH]);
    expect(noJar.code).toBe(2);
    expect(noJar.stderr).toMatch(/nope\.jar is not a file/);
    const noRepo = await gridforge(['release', 'jalien', '2.1.11-1', '--jar', jar, '--repo', join(dir, 'missing-repo')]);
    expect(noRepo.code).toBe(2);
    expect(await revisionOf(repo)).toBe(before);
  });
});
