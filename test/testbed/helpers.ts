/**
 * Helpers of the testbed suite: a repository with what a smoke job needs (the 32-bit Java runtime
 * from Debian's i386 packages, a JAliEn release whose jar is the contract JobAgent/JobWrapper built
 * from testbed/agent/, and a small job container), and a check that nothing of a testbed is left.
 */
import { execa } from 'execa';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildAgentJar } from '../../testbed/agent-jar.ts';
import { CLI, i386Debs } from '../release/helpers.ts';

export const REPO_NAME = 'alice.testbed.local';
export const JALIEN = '2.9.0-1';

export async function gf(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa('node', [CLI, ...args], { reject: false, env: { GRIDFORGE_QUIET: '1', ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function ok(args: string[]): Promise<string> {
  const r = await gf(args);
  if (r.code !== 0) throw new Error(`gridforge ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/**
 * A job container of a few files: bash and ps (procps) of this machine with their libraries, and the
 * bind points (without /workdir when asked, for the fault). The full job image (images/packages/)
 * takes a minute to publish; the smoke contract needs only these.
 */
export async function miniContainer(dir: string, withWorkdir = true): Promise<string> {
  const root = join(dir, withWorkdir ? 'container' : 'container-no-workdir');
  for (const d of ['cvmfs', 'proc', 'dev', 'tmp', 'etc', 'bin', 'usr/bin', ...(withWorkdir ? ['workdir'] : [])]) mkdirSync(join(root, d), { recursive: true });
  const files = new Set<string>(['/usr/bin/bash', '/usr/bin/ps', '/usr/bin/ls', '/usr/bin/sleep', '/usr/bin/cat']);
  for (const f of [...files]) {
    const l = await execa('ldd', [f]);
    for (const m of l.stdout.matchAll(/(\/[^\s]+\.so[^\s]*)/g)) files.add(m[1]);
  }
  for (const f of files) {
    const real = (await execa('readlink', ['-f', f])).stdout;
    mkdirSync(dirname(join(root, f)), { recursive: true });
    copyFileSync(real, join(root, f));
    chmodSync(join(root, f), 0o755);
  }
  for (const b of ['bash', 'ps', 'ls', 'sleep', 'cat']) if (!existsSync(join(root, 'bin', b))) copyFileSync(join(root, 'usr/bin', b), join(root, 'bin', b));
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  return root;
}

/** The repository a smoke job needs; returns its directory. */
export async function smokeRepo(dir: string): Promise<string> {
  const repo = join(dir, 'repo');
  await ok(['repo', 'init', repo, '--name', REPO_NAME]);
  const debs = await i386Debs();
  await ok(['release', 'java32', '--repo', repo, '--jdk', debs.jdk, '--libs', ...debs.libs]);
  const jar = await buildAgentJar(join(dir, 'alien-users.jar'));
  await ok(['release', 'jalien', JALIEN, '--jar', jar, '--repo', repo, '--tag', `jalien-${JALIEN}`]);
  await ok(['repo', 'publish', repo, await miniContainer(dir), '--path', 'containers/fs/singularity/mini-1']);
  await ok(['repo', 'publish', repo, await miniContainer(dir, false), '--path', 'containers/fs/singularity/no-workdir']);
  await ok(['repo', 'link', repo, 'containers/fs/singularity/default', 'mini-1', '--tag', 'smoke-ready']);
  return repo;
}

/** What of the testbed with this prefix is still on the machine (empty when down left nothing). */
export async function leftovers(prefix: string, dir: string): Promise<string[]> {
  const left: string[] = [];
  const sh = async (c: string) => (await execa('sh', ['-c', c], { reject: false })).stdout;
  for (const ns of (await sh('ip netns list')).split('\n')) if (ns.startsWith(`${prefix}-`)) left.push(`netns ${ns}`);
  for (const l of (await sh('ip -o link show')).split('\n')) {
    const n = l.split(':')[1]?.trim().split('@')[0];
    if (n?.startsWith(prefix)) left.push(`link ${n}`);
  }
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h);
    try {
      for (const c of readdirSync(d)) if (c.startsWith(`${prefix}-`)) left.push(`cgroup ${h}/${c}`);
    } catch {
      /* not a directory */
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(dir) || line.includes(`/${prefix}/`)) left.push(`mount ${line}`);
  // Processes of this testbed: in one of its cgroups, or naming its directory in their command line or
  // environment (SLURM_CONF). Other testbeds (other prefixes) may run at the same time.
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const read = (f: string) => { try { return readFileSync(`/proc/${pid}/${f}`, 'utf8'); } catch { return ''; } };
    const cmd = read('cmdline').replace(/\0/g, ' ').trim();
    if (read('cgroup').includes(`/${prefix}-`) || cmd.includes(dir) || read('environ').includes(dir)) left.push(`process ${pid} ${cmd || read('stat').split(' ')[1]}`);
  }
  const cont = await sh(`docker ps -a --format '{{.Names}}' | grep '^${prefix}' || true`);
  for (const c of cont.split('\n')) if (c.trim()) left.push(`container ${c}`);
  if ((await sh(`iptables -S FORWARD | grep ${prefix}br || true`)).trim()) left.push('iptables rule');
  if (existsSync(dir)) left.push(`dir ${dir}`);
  return left;
}
