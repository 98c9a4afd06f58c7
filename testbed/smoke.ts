/**
 * `testbed smoke`: K jobs through the site as the real chain runs them. The CE's submitter in the
 * VO-box host (testbed/batch-queue.ts) sbatches the script `gridforge render jobagent-startup`
 * renders for the testbed's site file; Slurm runs it on a worker node; it sets JAliEn up from
 * /cvmfs/<repo> (module default) and starts the JobAgent on the 32-bit JVM; the agent takes a task
 * from the stand-in task queue (testbed/task-queue.ts) and runs the JobWrapper in the job container.
 * Per job: queued, running, done, node, timings, output; a failure names its step, its reason and
 * the log tail. Every wait has a deadline, so faults end as reasons, never as hangs.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../base/errors.ts';
import { renderJobAgentStartup } from '../release/index.ts';
import { loadSiteSpec } from '../stacks/index.ts';
import { SlurmBatchQueue, type SlurmJobInfo } from './batch-queue.ts';
import { diagnoseWorker } from './faults.ts';
import { sleep } from './nshost.ts';
import { voboxRunner } from './vobox.ts';
import { failedStep, smokeJdl, smokePayload } from './payload.ts';
import { switchRevision } from './revision.ts';
import { siteFilePath } from './site-file.ts';
import { DEFAULT_PREFIX, readState, testbedDir, type TestbedState } from './state.ts';
import { isAlive } from './status.ts';
import { startTaskQueue, type QueueEvent } from './task-queue.ts';

export const JOB_NAME = 'gridforge-smoke';
export const DEFAULT_CONTAINER = 'containers/fs/singularity/default';
const FAILED_STATES = /^(FAILED|NODE_FAIL|TIMEOUT|CANCELLED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)/;

export interface SmokeOptions {
  jobs?: number;
  tag?: string;
  prefix?: string;
  /** job container, a path in the repository (default containers/fs/singularity/default) */
  container?: string;
  /** only these worker nodes (sbatch --nodelist) */
  nodes?: string[];
  /** fault injected into the contract programs (tests): the JobWrapper dies after reading its input */
  fault?: 'wrapper-dies';
  /** the payload sleeps this long after its checks (tests: keeps a job running) */
  payloadSleep?: number;
  /** per job deadline from sbatch to result, seconds (default 120) */
  timeoutSeconds?: number;
  jalienVersion?: string;
  onProgress?: (line: string) => void;
  /** called once every job is submitted (tests inject node faults here) */
  onSubmitted?: (slurmIds: string[]) => Promise<void> | void;
}

export interface SmokeJob {
  slurmId: string;
  task?: string;
  node?: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  ok: boolean;
  step?: string;
  reason?: string;
  jalien?: string;
  vm?: string;
  submittedAt: number;
  runningAt?: number;
  doneAt?: number;
  /** sbatch -> running, sbatch -> result */
  toRunningSeconds?: number;
  toDoneSeconds?: number;
  output: string;
  logTail: string;
}

export interface SmokeResult { ok: boolean; jobs: SmokeJob[]; seconds: number; jobsPerMinute: number; cvmfs: string; tag?: string; jalienSource: string }

function upState(prefix: string): TestbedState {
  const state = readState(testbedDir(prefix));
  if (!state || state.phase !== 'up' || !isAlive(state)) {
    throw new UsageError(`no testbed (${prefix}) is up`, { where: testbedDir(prefix), hint: 'run `gridforge testbed up --repo <repo-dir>` first' });
  }
  return state;
}

export async function testbedSmoke(o: SmokeOptions = {}): Promise<SmokeResult> {
  const jobs = o.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 200) throw new UsageError(`--jobs ${o.jobs} is not 1..200`, { where: '--jobs' });
  const state = upState(o.prefix ?? process.env.GRIDFORGE_TESTBED_PREFIX ?? DEFAULT_PREFIX);
  const say = o.onProgress ?? (() => {});
  const repo = state.repo!;
  const jalienSource = o.jalienVersion ? `requested: ${o.jalienVersion}` : 'module default';
  if (o.tag !== undefined && o.tag !== repo.tag) {
    await switchRevision(state, o.tag);
    say(`worker nodes now see tag ${o.tag} of ${repo.name}`);
  }
  const workers = state.hosts.filter((h) => h.role === 'worker');
  for (const n of o.nodes ?? []) if (!workers.some((w) => w.name === n)) throw new UsageError(`"${n}" is not a worker node of the testbed`, { where: '--node', hint: `use one of ${workers.map((w) => w.name).join(', ')}` });
  const bq = new SlurmBatchQueue(voboxRunner(state));
  const t0 = Date.now();
  const records = new Map<string, SmokeJob>();
  const byTask = new Map<string, SmokeJob>();
  const onEvent = (e: QueueEvent) => {
    const j = records.get(e.slurm);
    if (!j || j.state === 'done' || j.state === 'failed') return;
    if (e.kind === 'take') {
      Object.assign(j, { task: e.task, node: e.host, vm: e.vm, jalien: e.jalien });
      byTask.set(e.task, j);
      if (!j.runningAt) j.runningAt = e.at;
      j.state = 'running';
    } else if (e.kind === 'result') {
      j.doneAt = e.at;
      j.output = e.output;
      j.ok = e.exit === 0;
      j.state = j.ok ? 'done' : 'failed';
      if (!j.ok) {
        j.step = e.step === 'payload' ? `payload: ${failedStep(e.output) ?? '?'}` : e.step;
        j.reason = e.reason;
      }
    }
  };
  const queue = await startTaskQueue(state.gateway!, onEvent);
  try {
    const spec = loadSiteSpec(siteFilePath(state), { checkSiblings: false });
    const script = renderJobAgentStartup({
      site: spec.site,
      ceHost: spec.vobox.hostname,
      cvmfsRoot: `/cvmfs/${repo.name}`,
      jalienVersion: o.jalienVersion,
      env: { TESTBED_QUEUE: queue.url },
    });
    const scriptFile = join(state.dir, 'vobox', 'jobagent-startup.sh');
    writeFileSync(scriptFile, script, { mode: 0o755 });
    const payload = smokePayload(repo.name, o.payloadSleep ?? 0, jalienSource);
    const ttl = Math.max(30, (o.payloadSleep ?? 0) + 60);
    for (let i = 0; i < jobs; i++) {
      queue.add({
        id: `${Date.now().toString(36)}-${i + 1}`,
        jdl: smokeJdl(payload, o.fault),
        token: randomBytes(16).toString('hex'),
        container: `/cvmfs/${repo.name}/${(o.container ?? DEFAULT_CONTAINER).replace(/^\/+/, '')}`,
        apptainer: `/cvmfs/${repo.name}/containers/bin/apptainer/current/bin/apptainer`,
        ttl,
      });
    }
    for (let i = 0; i < jobs; i++) {
      const id = await bq.submit(script, { name: JOB_NAME, output: '/run/jobs/slurm-%j.out', chdir: '/run/jobs', nodes: o.nodes });
      records.set(id, { slurmId: id, state: 'queued', ok: false, submittedAt: Date.now(), output: '', logTail: '' });
      say(`job ${id} queued (sbatch)`);
    }
    await o.onSubmitted?.([...records.keys()]);
    await follow(records, bq, state, (o.timeoutSeconds ?? 120) * 1000, say);
  } finally {
    await queue.close();
    const open = [...records.values()].filter((j) => j.state === 'queued' || j.state === 'running').map((j) => j.slurmId);
    if (open.length) await bq.kill(JOB_NAME, open).catch(() => {});
  }
  for (const j of records.values()) {
    if (j.runningAt) j.toRunningSeconds = (j.runningAt - j.submittedAt) / 1000;
    if (j.doneAt) j.toDoneSeconds = (j.doneAt - j.submittedAt) / 1000;
    j.logTail = readLog(state, j);
  }
  const list = [...records.values()];
  const seconds = (Date.now() - t0) / 1000;
  return { ok: list.every((j) => j.ok), jobs: list, seconds, jobsPerMinute: (list.filter((j) => j.ok).length * 60) / seconds, cvmfs: repo.mode ?? 'checkout', tag: repo.tag, jalienSource };
}

function readLog(state: TestbedState, j: SmokeJob): string {
  if (!j.node) return '';
  const f = join(state.dir, j.node, 'run', 'jobs', `slurm-${j.slurmId}.out`);
  if (!existsSync(f)) return '';
  const text = readFileSync(f, 'utf8');
  return text.split('\n').slice(-15).join('\n');
}

/** Poll until every job has its result, failed in Slurm, or passed its deadline. */
async function follow(records: Map<string, SmokeJob>, bq: SlurmBatchQueue, state: TestbedState, timeoutMs: number, say: (l: string) => void): Promise<void> {
  const open = () => [...records.values()].filter((j) => j.state === 'queued' || j.state === 'running');
  const ended = new Map<string, number>();
  let lastSlurm = 0;
  while (open().length > 0) {
    await sleep(200);
    if (Date.now() - lastSlurm < 1000) continue;
    lastSlurm = Date.now();
    for (const j of open()) {
      const info = await bq.info(j.slurmId);
      if (info?.nodes && info.nodes !== '(null)' && !j.node) j.node = info.nodes;
      if (info?.state === 'RUNNING' && !j.runningAt) {
        j.runningAt = Date.now();
        j.state = 'running';
        say(`job ${j.slurmId} running on ${info.nodes}`);
      }
      const failure = info && FAILED_STATES.test(info.state);
      const finished = info && (info.state === 'COMPLETED' || failure);
      if (finished) ended.set(j.slurmId, ended.get(j.slurmId) ?? Date.now());
      // The agent's result may trail the Slurm state by a moment: wait 3 s for it, except for node failures.
      if (finished && (info.state.startsWith('NODE_FAIL') || Date.now() - ended.get(j.slurmId)! > 3000)) {
        await failFromSlurm(j, info, state);
        say(`job ${j.slurmId} failed: ${j.step}: ${j.reason}`);
      } else if (Date.now() - j.submittedAt > timeoutMs) {
        j.state = 'failed';
        j.step = j.task ? 'agent' : j.runningAt ? 'startup' : 'batch';
        j.reason = `no result within ${timeoutMs / 1000} s (Slurm: ${info ? `${info.state} ${info.reason}` : 'job unknown'})`;
        j.doneAt = Date.now();
        say(`job ${j.slurmId} failed: ${j.reason}`);
      }
    }
    for (const j of records.values()) if (j.state === 'done' && !ended.has(`said-${j.slurmId}`)) { ended.set(`said-${j.slurmId}`, 0); say(`job ${j.slurmId} done on ${j.node}`); }
  }
}

async function failFromSlurm(j: SmokeJob, info: SlurmJobInfo, state: TestbedState): Promise<void> {
  j.state = 'failed';
  j.doneAt = Date.now();
  const node = info.nodes && info.nodes !== '(null)' ? info.nodes : j.node;
  if (node) j.node = node;
  if (info.state.startsWith('NODE_FAIL')) {
    j.step = 'batch';
    j.reason = `Slurm: ${info.state} on ${node}: the node stopped responding (slurmd gone) while the job ran`;
    return;
  }
  const worker = state.hosts.find((h) => h.name === node);
  const diagnosis = worker ? await diagnoseWorker(state, worker) : undefined;
  j.step = j.task ? 'agent' : 'startup';
  j.reason = `Slurm: ${info.state} exit ${info.exitCode} on ${node} ${j.task ? 'after the agent took its task, without a result' : 'before the JobAgent took a task'}${diagnosis ? `: ${diagnosis}` : ''}`;
}
