/**
 * Helpers of the elastic suites: a tiny repository for /cvmfs, commands on the testbed's controller
 * (where munge and scontrol reach slurmctld, as for Slurm's own programs), the elastic containers
 * on the VO-box host's Docker engine, and Slurm job records.
 */
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostExec } from '../../testbed/nshost.ts';
import type { TestbedState } from '../../testbed/index.ts';
import { CLI } from '../release/helpers.ts';

export const REPO = 'alice.elastic.local';

export async function tinyRepo(dir: string): Promise<string> {
  const repo = join(dir, 'repo');
  const tree = join(dir, 'tree');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'hello'), 'elastic\n');
  for (const args of [['repo', 'init', repo, '--name', REPO], ['repo', 'publish', repo, tree, '--path', 'probe']]) {
    const r = await execa('node', [CLI, ...args], { reject: false, env: { GRIDFORGE_QUIET: '1' } });
    if (r.exitCode !== 0) throw new Error(`gridforge ${args.join(' ')}: ${r.stderr}`);
  }
  return repo;
}

/** A shell command on the controller host, SLURM_CONF set. */
export async function onCtl(st: TestbedState, cmd: string, timeoutMs = 120_000): Promise<{ stdout: string; stderr: string; code: number }> {
  const ctl = st.hosts.find((h) => h.role === 'controller')!;
  return hostExec(ctl, `export SLURM_CONF=${st.slurm!.conf}; ${cmd}`, { timeoutMs });
}

/** gridforge on the controller (as slurmctld runs it). */
export async function gfOnCtl(st: TestbedState, args: string, timeoutMs = 120_000) {
  return onCtl(st, `GRIDFORGE_QUIET=1 ${process.execPath} ${CLI} ${args}`, timeoutMs);
}

/** Names of the elastic containers on the VO-box host. */
export async function containers(st: TestbedState): Promise<string[]> {
  const r = await execa('docker', ['-H', `unix://${st.vobox!.socket}`, 'ps', '-a', '--filter', 'label=org.gridforge.elastic.node', '--format', '{{.Names}}'], { reject: false });
  return String(r.stdout).split('\n').filter(Boolean);
}

export interface JobRecord { id: string; state: string; exit: string; nodes: string; reason: string }

export async function jobs(st: TestbedState): Promise<JobRecord[]> {
  const r = await onCtl(st, 'scontrol -o show job', 20_000);
  return r.stdout.split('\n').filter((l) => l.startsWith('JobId=')).map((l) => ({
    id: /JobId=(\d+)/.exec(l)![1],
    state: /JobState=(\S+)/.exec(l)![1],
    exit: /ExitCode=(\S+)/.exec(l)![1],
    nodes: /\bNodeList=(\S+)/.exec(l)?.[1] ?? '',
    reason: /\bReason=(\S+)/.exec(l)?.[1] ?? '',
  }));
}

export async function submit(st: TestbedState, n: number, payload: string, extra = ''): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await onCtl(st, `sbatch --parsable --chdir=/tmp -o /dev/null -n1 ${extra} --wrap ${JSON.stringify(payload)}`, 20_000);
    if (r.code !== 0) throw new Error(`sbatch: ${r.stderr}`);
    ids.push(r.stdout.trim().split(';')[0]);
  }
  return ids;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
