/**
 * Elastic worker nodes on real Slurm (elastic/README.md): the testbed with no static worker node and
 * a pool of at most 3 cloud nodes (containers on the VO-box host, MACVLAN addresses on the site
 * LAN). slurmctld itself calls `gridforge elastic resume/suspend` through the installed wrappers.
 * 5 jobs: nodes are created, register and run them, never more than 3 at once, /cvmfs is there,
 * every payload exits 0, and the nodes are removed after SuspendTime. Faults: a node whose start
 * fails is DOWN with gridforge's reason at once and leaves nothing; a node that never registers is
 * DOWN after ResumeTimeout and reap removes it; the jobs run on the other node. A resume program
 * killed mid-creation leaves nothing after reap.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyTestbed, readState, testbedDir, testbedUp, type TestbedState } from '../../testbed/index.ts';
import { buildWorkerNodeImage, loadPool, readLife, setFault, WORKER_NODE_IMAGE } from '../../elastic/index.ts';
import { loadSiteSpec } from '../../stacks/index.ts';
import { CLI } from '../release/helpers.ts';
import { leftovers } from '../testbed/helpers.ts';
import { REPO, containers, gfOnCtl, jobs, onCtl, sleep, submit, tinyRepo } from './helpers.ts';

const PREFIX = 'gfel';
const SUSPEND = 10;
const RESUME_TIMEOUT = 25;
let work: string;
let st: TestbedState;
const site = () => join(st.dir, 'site.yaml');
const pool = () => loadPool(loadSiteSpec(site(), { checkSiblings: false }));

beforeAll(async () => {
  await destroyTestbed(PREFIX);
  work = mkdtempSync(join(tmpdir(), 'gfel-'));
  const repo = await tinyRepo(work);
  if ((await execa('docker', ['image', 'inspect', WORKER_NODE_IMAGE], { reject: false })).exitCode !== 0) await buildWorkerNodeImage();
  await testbedUp({ prefix: PREFIX, repo, elastic: { maxNodes: 3, suspendTime: SUSPEND, resumeTimeout: RESUME_TIMEOUT } });
  st = readState(testbedDir(PREFIX))!;
}, 180_000);

afterAll(async () => {
  await destroyTestbed(PREFIX);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

describe('elastic worker nodes on real Slurm', () => {
  it('5 jobs on a pool of at most 3: nodes are created, register, run every payload (with /cvmfs), never more than 3, and are removed after SuspendTime', async () => {
    expect(await containers(st)).toEqual([]);
    const t0 = Date.now();
    const ids = await submit(st, 5, `test -r /cvmfs/${REPO}/probe/hello && sleep 3 && echo ran-on-$(hostname)`);
    let most = 0;
    let sawRunning = false;
    let fleetNodes: string[] = [];
    const done = await until('5 jobs COMPLETED', 150_000, async () => {
      most = Math.max(most, (await containers(st)).length);
      const js = (await jobs(st)).filter((j) => ids.includes(j.id));
      if (!sawRunning && js.some((j) => j.state === 'RUNNING')) {
        sawRunning = true;
        await gfOnCtl(st, `elastic status --site ${site()}`); // records the running transition
        const fleet = await execa('node', [CLI, 'fleet', 'status', st.dir, '--json'], { reject: false, env: { GRIDFORGE_QUIET: '1' } });
        fleetNodes = (JSON.parse(String(fleet.stdout)).sites[0]?.elastic?.nodes ?? []).map((n: { node: string }) => n.node);
      }
      if (js.some((j) => /FAILED|CANCELLED|NODE_FAIL|TIMEOUT/.test(j.state))) throw new Error(`a job failed: ${JSON.stringify(js)}`);
      return js.length === 5 && js.every((j) => j.state === 'COMPLETED') && js;
    });
    const makespan = (Date.now() - t0) / 1000;
    expect(done.map((j) => j.exit)).toEqual(['0:0', '0:0', '0:0', '0:0', '0:0']);
    expect(new Set(done.map((j) => j.nodes)).size).toBeGreaterThanOrEqual(2);
    for (const j of done) expect(j.nodes).toMatch(/^el[1-3]$/);
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThanOrEqual(2);
    // removed after SuspendTime (+ SuspendTimeout and Slurm's power-save interval)
    await until('every elastic container removed', 60_000, async () => (await containers(st)).length === 0);
    const life = readLife(pool());
    for (const n of new Set(done.map((j) => j.nodes))) {
      const ev = life.filter((l) => l.node === n).map((l) => l.event);
      expect(ev, n).toEqual(expect.arrayContaining(['resume', 'created', 'registered', 'suspend', 'removed']));
      const reg = life.find((l) => l.node === n && l.event === 'registered')!;
      expect(Number(reg.seconds), `${n}: ResumeProgram called -> registered`).toBeLessThan(20);
    }
    expect(life.some((l) => l.event === 'running')).toBe(true);
    expect(fleetNodes.length, 'fleet status shows the live elastic nodes').toBeGreaterThan(0);
    for (const n of fleetNodes) expect(n).toMatch(/^el[1-3]$/);
    const status = await gfOnCtl(st, `elastic status --site ${site()} --json`);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s.live).toBe(0);
    expect(s.nodes.map((n: { slurm: string }) => n.slurm).join(' ')).toMatch(/POWER(ED|ING)_DOWN/);
    process.stdout.write(`elastic: 5 jobs on <=3 cloud nodes in ${makespan.toFixed(1)} s (most ${most} at once)\n`);
  }, 240_000);

  it('a node whose container fails to start is DOWN with the reason and leaves nothing; one that never registers is DOWN after ResumeTimeout and reaped; the jobs run on the other node', async () => {
    await until('every node powered down', 60_000, async () => (await containers(st)).length === 0 && (await onCtl(st, 'sinfo -h -N -o %T')).stdout.trim().split('\n').every((x) => x === 'idle~'));
    const p = pool();
    setFault(p, 'el1', 'fail-start');
    setFault(p, 'el2', 'no-register');
    try {
      const ids = await submit(st, 2, 'sleep 1; echo ok', '--requeue');
      let last = '';
      const why = await until('el1 DOWN with gridforge reason', 30_000, async () => {
        const r = await onCtl(st, 'scontrol -o show node el1');
        return /State=\S*DOWN/.test(r.stdout) && /Reason=gridforge elastic resume failed/.test(r.stdout) && r.stdout;
      });
      expect(why).toMatch(/fail-start/);
      expect((await containers(st)).filter((c) => c.endsWith('-el1'))).toEqual([]);
      // el2 runs without slurmd: Slurm gives up after ResumeTimeout, reap removes the container
      await until('el2 container up', 20_000, async () => (await containers(st)).some((c) => c.endsWith('-el2')));
      await until('el2 DOWN after ResumeTimeout', (RESUME_TIMEOUT + 40) * 1000, async () => /State=\S*DOWN/.test((await onCtl(st, 'scontrol -o show node el2')).stdout));
      const reaped = await gfOnCtl(st, `elastic reap --site ${site()} --json`);
      expect(reaped.code, reaped.stderr).toBe(0);
      expect(JSON.parse(reaped.stdout).map((r: { node: string }) => r.node)).toContain('el2');
      expect((await containers(st)).filter((c) => /-el[12]$/.test(c))).toEqual([]);
      const done = await until('both jobs COMPLETED on el3', 120_000, async () => {
        const js = (await jobs(st)).filter((j) => ids.includes(j.id));
        last = JSON.stringify(js);
        return js.every((j) => j.state === 'COMPLETED') && js;
      }).catch((e) => {
        throw new Error(`${(e as Error).message}; jobs: ${last}`);
      });
      expect(done.map((j) => [j.nodes, j.exit])).toEqual([['el3', '0:0'], ['el3', '0:0']]);
      const life = readLife(p);
      expect(life.some((l) => l.node === 'el1' && l.event === 'marked-down')).toBe(true);
      expect(life.some((l) => l.node === 'el2' && l.event === 'reaped')).toBe(true);
    } finally {
      setFault(p, 'el1', undefined);
      setFault(p, 'el2', undefined);
      await onCtl(st, 'scontrol update NodeName=el[1-2] State=RESUME');
    }
  }, 240_000);

  it('a resume program killed mid-creation leaves nothing after reap', async () => {
    await until('el3 powered down', 60_000, async () => (await containers(st)).length === 0 && /POWERED_DOWN/.test((await onCtl(st, 'scontrol -o show node el3')).stdout));
    setFault(pool(), 'el3', 'no-register'); // the node never registers, so the program is still waiting when killed
    try {
      const ctl = st.hosts.find((h) => h.role === 'controller')!;
      const prog = join(st.dir, 'elastic', st.elastic ? `TESTBED-${PREFIX.toUpperCase()}` : '', 'bin', 'gridforge-elastic-resume');
      const child = execa('nsenter', ['-t', String(ctl.holderPid), '-n', '-m', '-u', prog, 'el3'], { reject: false, env: { SLURM_CONF: st.slurm!.conf } });
      await until('el3 container created', 30_000, async () => (await containers(st)).some((c) => c.endsWith('-el3')));
      const pid = Number(readFileSync(join(st.dir, 'elastic', `TESTBED-${PREFIX.toUpperCase()}`, 'nodes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.node === 'el3' && l.event === 'resume').at(-1).pid);
      process.kill(pid, 'SIGKILL');
      await child;
      expect((await containers(st)).some((c) => c.endsWith('-el3'))).toBe(true); // the zombie
      const reaped = await gfOnCtl(st, `elastic reap --site ${site()} --json`);
      expect(reaped.code, reaped.stderr).toBe(0);
      expect(JSON.parse(reaped.stdout)).toEqual([expect.objectContaining({ node: 'el3', reason: expect.stringMatching(/powered down/) })]);
      expect(await containers(st)).toEqual([]);
    } finally {
      setFault(pool(), 'el3', undefined);
    }
  }, 120_000);

  it('testbed down removes the elastic nodes with everything else (their processes, the container, the files)', async () => {
    setFault(pool(), 'el1', 'no-register'); // a node that stays up: resumed by hand, never registered
    const r = await gfOnCtl(st, `elastic resume el1 --site ${site()} --json`, 60_000);
    expect(r.code, r.stderr).toBe(0); // created; registering is Slurm's to judge (ResumeTimeout)
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ node: 'el1', ok: true, address: expect.stringMatching(/\.60$/) })]);
    expect(await containers(st)).toEqual(['gf-testbed-gfel-el1']);
    const inContainer = (await execa('docker', ['-H', `unix://${st.vobox!.socket}`, 'top', 'gf-testbed-gfel-el1', '-o', 'pid'], { reject: false })).stdout.split('\n').slice(1).map(Number).filter(Boolean);
    expect(inContainer.length).toBeGreaterThan(0);
    await destroyTestbed(PREFIX);
    expect(await leftovers(PREFIX, st.dir)).toEqual([]);
    for (const pid of inContainer) expect(existsSync(`/proc/${pid}`), `container process ${pid}`).toBe(false);
  }, 120_000);
});
