/**
 * Shared helpers of the release suites: temp dirs with the gfrel- prefix, the real CLI, a bash
 * with Environment Modules initialised, and a small Java program standing in for the JobAgent.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'scripts/bin/gridforge.mjs');
export const I386_CACHE = process.env.GRIDFORGE_I386_CACHE ?? '/var/cache/gridforge/i386';

export async function tempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `gfrel-${tag}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the gridforge CLI (real process, real exit code). */
export async function gridforge(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const r = await execa('node', [CLI, ...args], { cwd: opts.cwd ?? ROOT, reject: false, env: { GRIDFORGE_QUIET: '1', ...opts.env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Run bash with Environment Modules initialised. */
export async function moduleShell(script: string, env: Record<string, string> = {}): Promise<Run> {
  const r = await execa('bash', ['-c', `source /usr/share/modules/init/bash\n${script}`], { reject: false, env });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export async function initRepo(dir: string, name = 'alice.gfrel.local'): Promise<string> {
  const repo = join(dir, 'repo');
  const r = await gridforge(['repo', 'init', repo, '--name', name, '--keys', join(dir, 'keys')]);
  if (r.code !== 0) throw new Error(`repo init failed: ${r.stderr}`);
  return repo;
}

/** Current revision of a repository, from the S line of its manifest. */
export async function revisionOf(repo: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const text = (await readFile(join(repo, '.cvmfspublished'), 'latin1')).split('\n--\n')[0];
  const m = /^S(\d+)$/m.exec(text);
  if (!m) throw new Error('no S line in .cvmfspublished');
  return Number(m[1]);
}

export async function checkoutRepo(repo: string, dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
  const r = await gridforge(['repo', 'checkout', repo, dest]);
  if (r.code !== 0) throw new Error(`checkout failed: ${r.stderr}`);
}

/**
 * Compile the stand-in for alien.site.JobRunner into <dir>/alien-users.jar (javac 17 with
 * --release 11, so the 32-bit JDK 17 and the host JDK both run it). It prints the JVM's data model,
 * the site variables and its own VmPeak from /proc/self/status.
 */
export async function buildJobRunnerJar(dir: string, marker = 'v1'): Promise<string> {
  const src = join(dir, 'src', 'alien', 'site');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'JobRunner.java'), `package alien.site;
import java.nio.file.*;
public class JobRunner {
  public static void main(String[] args) throws Exception {
    String peak = "";
    for (String l : Files.readAllLines(Paths.get("/proc/self/status"))) if (l.startsWith("VmPeak:")) peak = l.replaceAll("[^0-9]", "");
    System.out.println("JobRunner ${marker} model=" + System.getProperty("sun.arch.data.model") + " arch=" + System.getProperty("os.arch")
      + " vm=" + System.getProperty("java.vm.name").replace(' ', '_') + " site=" + System.getenv("site") + " CE=" + System.getenv("CE")
      + " jalien=" + System.getenv("JALIEN_VERSION") + " VmPeakKiB=" + peak);
  }
}
`);
  const classes = join(dir, 'classes');
  await execa('javac', ['--release', '11', '-d', classes, join(src, 'JobRunner.java')]);
  const jar = join(dir, 'alien-users.jar');
  await execa('jar', ['cf', jar, '-C', classes, '.']);
  return jar;
}

/** The cached i386 .debs (fetched once by scripts/fetch-i386.sh). */
export async function i386Debs(): Promise<{ jdk: string; libs: string[] }> {
  await execa('bash', [join(ROOT, 'scripts/fetch-i386.sh'), I386_CACHE]);
  const { readdir } = await import('node:fs/promises');
  const debs = (await readdir(I386_CACHE)).filter((f) => f.endsWith('.deb')).sort().map((f) => join(I386_CACHE, f));
  const jdk = debs.find((d) => /openjdk-17-jre-headless_/.test(d));
  if (!jdk) throw new Error(`no openjdk-17-jre-headless .deb in ${I386_CACHE}`);
  return { jdk, libs: debs.filter((d) => d !== jdk) };
}
