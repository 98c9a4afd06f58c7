/**
 * `gridforge release --from-git --smoke`: JAliEn is published as a candidate revision
 * (`<version>-candidate`, default unchanged), smoke jobs run against it on a testbed the release
 * brings up (real Slurm, the VO-box, the 32-bit JVM, the job container), and only when they pass
 * does it become the module default and get the version tag. A candidate whose jar has no JobAgent
 * fails the smoke: exit 1, the default stays where it was.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentJar } from '../../testbed/agent-jar.ts';
import { destroyTestbed, testbedDir } from '../../testbed/index.ts';
import { JALIEN, REPO_NAME, gf, leftovers, smokeRepo } from './helpers.ts';
import { projectConfigYaml } from '../support/project-config.ts';

const PREFIX = 'gfts';
const ENV = { GRIDFORGE_TESTBED_PREFIX: PREFIX };
let work: string;
let repo: string;
let git: string;

const gitc = (...args: string[]) => execa('git', ['-C', git, ...args], { env: { GIT_AUTHOR_NAME: 'gftb', GIT_AUTHOR_EMAIL: 'gftb@example.org', GIT_COMMITTER_NAME: 'gftb', GIT_COMMITTER_EMAIL: 'gftb@example.org' } });

async function brokenJar(file: string): Promise<void> {
  const src = join(work, 'broken', 'alien', 'site');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'NotTheAgent.java'), 'package alien.site; public class NotTheAgent { public static void main(String[] a) {} }\n');
  await execa('javac', ['--release', '8', '-Xlint:-options', '-d', join(work, 'broken', 'classes'), join(src, 'NotTheAgent.java')]);
  await execa('jar', ['cf', file, '-C', join(work, 'broken', 'classes'), '.']);
}

const defaultOf = async () => (await gf(['repo', 'cat', repo, 'el9-x86_64/Modules/modulefiles/JAliEn/.version'])).stdout;

beforeAll(async () => {
  await destroyTestbed(PREFIX);
  work = mkdtempSync(join(tmpdir(), 'gftb-rel-'));
  repo = await smokeRepo(work);
  git = join(work, 'jalien-src');
  mkdirSync(join(git, 'build'), { recursive: true });
  writeFileSync(join(git, 'gridforge.yaml'), projectConfigYaml({ prefix: 'gftb', repository: { dir: repo, name: REPO_NAME, keys: `${repo}.keys` }, release: { images: [] } }));
  writeFileSync(join(git, 'packages.txt'), 'bash\n');
  await gitc('init', '-q', '-b', 'main');
  await gitc('add', 'gridforge.yaml', 'packages.txt');
  await gitc('commit', '-q', '-m', 'release');
}, 180_000);

afterAll(async () => {
  await destroyTestbed(PREFIX);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('release --from-git --smoke', () => {
  it('a candidate that fails its smoke jobs is not made the default (exit 1, the failing step named)', async () => {
    await brokenJar(join(git, 'build', 'alien-users.jar'));
    await gitc('tag', '2.9.1-1');
    const r = await gf(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--smoke', '--cwd', git], ENV);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('smoke jobs against 2.9.1-1-candidate failed, so JAliEn 2.9.1-1 was NOT made the default');
    expect(r.stderr).toMatch(/failed at: startup/);
    expect(r.stderr).toContain('Could not find or load main class alien.site.JobRunner');
    expect(await defaultOf()).toContain(`"${JALIEN}"`);
    const tags = (await gf(['repo', 'tags', repo])).stdout;
    expect(tags).toContain('2.9.1-1-candidate');
    expect(tags).not.toMatch(/^2\.9\.1-1\s/m);
    expect(await leftovers(PREFIX, testbedDir(PREFIX))).toEqual([]);
  }, 150_000);

  it('a good candidate passes on the testbed, then becomes the default and gets the version tag', async () => {
    await buildAgentJar(join(git, 'build', 'alien-users.jar'));
    await gitc('commit', '-q', '--allow-empty', '-m', 'fixed build');
    await gitc('tag', '2.9.2-1');
    const r = await gf(['--config', join(git, 'gridforge.yaml'), 'release', '--from-git', '--smoke', '--cwd', git], { ...ENV, GRIDFORGE_QUIET: '0' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/smoke: 2\/2 jobs ok/);
    expect(r.stderr).toContain('JAliEn 2.9.2-1 (requested: 2.9.2-1) at /cvmfs/alice.testbed.local/el9-x86_64/Packages/JAliEn/2.9.2-1');
    expect(r.stdout).toContain('default 2.9.2-1');
    expect(await defaultOf()).toContain('"2.9.2-1"');
    const tags = (await gf(['repo', 'tags', repo])).stdout;
    expect(tags).toContain('2.9.2-1-candidate');
    expect(tags).toMatch(/2\.9\.2-1(?!-)/);
    expect(await leftovers(PREFIX, testbedDir(PREFIX))).toEqual([]);
  }, 150_000);
});
