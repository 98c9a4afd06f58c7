/**
 * The testbed end to end (testbed/README.md): `gridforge testbed up --workers 2` brings up real
 * Slurm (slurmctld, two slurmd, munge) in namespace hosts with the repository at /cvmfs/<name> on
 * every worker node; `testbed smoke` runs jobs through the VO-box host's submitter, sbatch, the
 * startup script, the JobAgent on the 32-bit JVM from the repository and the JobWrapper in a
 * bubblewrap container. Each fault (worker CVMFS missing or without the JAliEn version, container
 * without /workdir, a dying wrapper, slurmd killed mid-job) shows up with its reason; `testbed down`
 * leaves nothing, also after `testbed up` was killed half way.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakCvmfs, destroyTestbed, killSlurmd, readState, repairCvmfs, restartSlurmd, testbedDir, testbedSmoke, type SmokeResult, type TestbedState } from '../../testbed/index.ts';
import { CLI } from '../release/helpers.ts';
import { JALIEN, REPO_NAME, gf, leftovers, smokeRepo } from './helpers.ts';

const PREFIX = 'gftt';
const ENV = { GRIDFORGE_TESTBED_PREFIX: PREFIX };
const DIR = testbedDir(PREFIX);
let work: string;
let repo: string;

beforeAll(async () => {
  await destroyTestbed(PREFIX);
  work = mkdtempSync(join(tmpdir(), 'gftb-'));
  repo = await smokeRepo(work);
}, 180_000);

afterAll(async () => {
  await destroyTestbed(PREFIX);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

const state = (): TestbedState => readState(DIR)!;
const worker = (name: string) => state().hosts.find((h) => h.name === name)!;
const one = (r: SmokeResult) => r.jobs[0];

describe('gridforge testbed', () => {
  it('refuses a directory that is not a repository (exit 2) and makes nothing', async () => {
    const r = await gf(['testbed', 'up', '--repo', work], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a repository');
    expect(existsSync(DIR)).toBe(false);
  });

  it('up --workers 2: real Slurm with two worker nodes, /cvmfs/<repo> on each; smoke runs jobs end to end', async () => {
    const up = await gf(['testbed', 'up', '--workers', '2', '--repo', repo, '--tag', 'smoke-ready'], ENV);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/is a checkout of tag smoke-ready \(no stock cvmfs client found\)|mounted with the stock cvmfs client/);
    const st = JSON.parse((await gf(['testbed', 'status', '--json'], ENV)).stdout);
    expect(st.up).toBe(true);
    expect(st.nodes.map((n: { name: string }) => n.name).sort()).toEqual(['wn1', 'wn2']);

    // The VO-box: the vobox-slurm image deployed by the site deploy engine, its Slurm client set up from
    // the site file (the site's munge key and slurm.conf), talking to the controller.
    const vb = state().vobox!;
    expect(vb.image).toBe('gridforge/vobox-slurm:debian-slurm-0.1.0');
    const inVobox = (c: string) => execa('docker', ['-H', `unix://${vb.socket}`, 'exec', vb.container, 'sh', '-c', c], { reject: false });
    expect((await inVobox('sinfo -h -o "%P %D"')).stdout.trim()).toBe('alice* 2');
    expect((await inVobox('cmp /etc/gridforge/site/munge.key /etc/munge/munge.key && stat -c %U:%a /etc/munge/munge.key')).stdout.trim()).toBe('munge:400');

    const smoke = await gf(['testbed', 'smoke', '--jobs', '4', '--json'], ENV);
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
    const r = JSON.parse(smoke.stdout) as SmokeResult;
    expect(r.jobs).toHaveLength(4);
    for (const j of r.jobs) {
      expect(j.ok).toBe(true);
      expect(j.state).toBe('done');
      expect(['wn1', 'wn2']).toContain(j.node);
      expect(j.vm).toMatch(/^32-bit /);
      expect(j.jalien).toBe(JALIEN);
      expect(j.output).toContain('ps from procps-ng');
      expect(j.output).toMatch(/openjdk version "17/);
      expect(j.output).toContain(`/cvmfs/${REPO_NAME} visible`);
      expect(j.output).toContain('/workdir writable');
      expect(j.output).toContain(`JAliEn ${JALIEN} (module default)`);
      expect(j.toDoneSeconds).toBeLessThan(30);
    }
    // Slurm really ran them: the controller knows the jobs and where they ran.
    const ctl = state().hosts.find((h) => h.role === 'controller')!;
    const sq = await execa('nsenter', ['-t', String(ctl.holderPid), '-n', '-m', 'sh', '-c', `SLURM_CONF=${state().slurm!.conf} scontrol -o show job ${r.jobs[0].slurmId}`]);
    expect(sq.stdout).toContain('JobState=COMPLETED');
    expect(sq.stdout).toContain(`NodeList=${r.jobs[0].node}`);
    expect(sq.stdout).toMatch(/AllocNode:Sid=vobox(\.gftt\.testbed\.local)?:/);
  }, 120_000);

  it('a worker node whose CVMFS is missing or lacks the JAliEn version: the smoke report names it (CLI exit 1 with the log tail)', async () => {
    for (const w of ['wn1', 'wn2']) await breakCvmfs(state(), worker(w), 'missing');
    const cli = await gf(['testbed', 'smoke', '--jobs', '1'], ENV);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('failed at: startup');
    expect(cli.stdout).toMatch(/CVMFS on wn[12]: \/cvmfs\/alice\.testbed\.local is missing/);
    expect(cli.stdout).toContain('log tail');
    for (const w of ['wn1', 'wn2']) await repairCvmfs(state(), worker(w));

    await breakCvmfs(state(), worker('wn2'), 'no-jalien');
    const r = await testbedSmoke({ prefix: PREFIX, jobs: 1, nodes: ['wn2'], timeoutSeconds: 60 });
    expect(r.ok).toBe(false);
    expect(one(r).step).toBe('startup');
    expect(one(r).reason).toContain(`CVMFS on wn2 lacks JAliEn ${JALIEN} (the module default)`);
    await repairCvmfs(state(), worker('wn2'));
    expect((await testbedSmoke({ prefix: PREFIX, jobs: 1, nodes: ['wn2'], timeoutSeconds: 60 })).ok).toBe(true);
  }, 120_000);

  it('a container image without /workdir and a JobWrapper that dies are reported with their reasons', async () => {
    const noWorkdir = await testbedSmoke({ prefix: PREFIX, jobs: 1, container: 'containers/fs/singularity/no-workdir', timeoutSeconds: 60 });
    expect(one(noWorkdir).step).toBe('container');
    expect(one(noWorkdir).reason).toContain('has no /workdir');
    const dies = await testbedSmoke({ prefix: PREFIX, jobs: 1, fault: 'wrapper-dies', timeoutSeconds: 60 });
    expect(one(dies).step).toBe('wrapper');
    expect(one(dies).reason).toMatch(/JobWrapper \(bwrap\) died with exit code \d+ without reporting/);
  }, 60_000);

  it('slurmd killed mid-job: the job ends as a node failure within the timeout', async () => {
    const t0 = Date.now();
    const r = await testbedSmoke({
      prefix: PREFIX,
      jobs: 1,
      nodes: ['wn2'],
      payloadSleep: 60,
      timeoutSeconds: 90,
      onSubmitted: async () => {
        for (let i = 0; i < 50 && !existsSync(join(DIR, 'wn2', 'run', 'jobs')); i++) await new Promise((ok) => setTimeout(ok, 100));
        await new Promise((ok) => setTimeout(ok, 3000));
        await killSlurmd(worker('wn2'));
      },
    });
    expect(r.ok).toBe(false);
    expect(one(r).step).toBe('batch');
    expect(one(r).reason).toContain('NODE_FAIL on wn2');
    expect(Date.now() - t0).toBeLessThan(60_000);
    await restartSlurmd(state(), worker('wn2'));
  }, 120_000);

  it('down removes every namespace, interface, mount, process and file of the testbed', async () => {
    const r = await gf(['testbed', 'down'], ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(await leftovers(PREFIX, DIR)).toEqual([]);
  }, 60_000);

  it('down after testbed up was killed half way leaves nothing', async () => {
    const child = execa('node', [CLI, 'testbed', 'up', '--repo', repo], { reject: false, env: { ...ENV, GRIDFORGE_QUIET: '1' } });
    for (let i = 0; i < 300 && (readState(DIR)?.hosts.filter((h) => h.holderPid).length ?? 0) < 3; i++) await new Promise((ok) => setTimeout(ok, 50));
    expect(readState(DIR)?.phase).toBe('starting');
    child.kill('SIGKILL');
    await child;
    expect((await leftovers(PREFIX, DIR)).length).toBeGreaterThan(0);
    const down = await gf(['testbed', 'down'], ENV);
    expect(down.code, down.stderr).toBe(0);
    expect(await leftovers(PREFIX, DIR)).toEqual([]);
  }, 60_000);
});
