/**
 * The CE's batch-queue submitter, shaped like JAliEn's batch-queue interface
 * (github.com/alisw/jalien src/alien/site/batchqueue/BatchQueue.java: submit(script),
 * getNumberActive(), getNumberQueued(), kill()) over sbatch, squeue and scancel, as the SLURM
 * implementation does. It runs inside the VO-box host, whose Slurm client talks to the site's
 * controller with the site's munge key.
 */
import { GridforgeError } from '../base/errors.ts';
import { shellQuote } from '../base/shell-quote.ts';
import type { ExecResult } from './nshost.ts';

export interface SlurmJobInfo { id: string; state: string; reason: string; nodes: string; exitCode: string; runTime: string }

export interface SubmitOptions { name: string; output: string; chdir: string; nodes?: string[]; timeLimitMinutes?: number }

export class SlurmBatchQueue {
  /** `run` executes a command in the VO-box (its container, or the VO-box host), feeding `input` to stdin. */
  constructor(private readonly run: (cmd: string, input?: string) => Promise<ExecResult>) {}

  private cmd(c: string, input?: string): Promise<ExecResult> {
    return this.run(c, input);
  }

  /** sbatch the script (its text, handed over on stdin as JAliEn's SLURM queue does); returns the Slurm job id. */
  async submit(script: string, o: SubmitOptions): Promise<string> {
    const args = ['--parsable', `--job-name=${o.name}`, `--output=${o.output}`, `--chdir=${o.chdir}`, '--ntasks=1', '--cpus-per-task=1', '--no-requeue', `--time=${o.timeLimitMinutes ?? 10}`];
    if (o.nodes?.length) args.push(`--nodelist=${o.nodes.join(',')}`);
    const r = await this.cmd(`sbatch ${args.map(shellQuote).join(' ')}`, script);
    const id = r.stdout.trim().split(';')[0];
    if (r.code !== 0 || !/^\d+$/.test(id)) throw new GridforgeError(`sbatch failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`, { hint: 'check the VO-box Slurm client: slurm.conf and the munge key' });
    return id;
  }

  private async count(states: string, name: string): Promise<number> {
    const r = await this.cmd(`squeue -h -n ${shellQuote(name)} -t ${states} -o %i`);
    if (r.code !== 0) throw new GridforgeError(`squeue failed: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter((l) => l.trim()).length;
  }

  /** jobs running or being set up (JAliEn's getNumberActive) */
  getNumberActive(name: string): Promise<number> {
    return this.count('RUNNING,COMPLETING,CONFIGURING', name);
  }

  /** jobs waiting in the queue (JAliEn's getNumberQueued) */
  getNumberQueued(name: string): Promise<number> {
    return this.count('PENDING', name);
  }

  /** scancel by job name (JAliEn's kill()), or the given ids */
  async kill(name: string, ids: string[] = []): Promise<void> {
    await this.cmd(ids.length ? `scancel ${ids.map(shellQuote).join(' ')}` : `scancel -n ${shellQuote(name)}`);
  }

  /** The controller's view of one job (kept MinJobAge seconds after it ends). */
  async info(id: string): Promise<SlurmJobInfo | undefined> {
    const r = await this.cmd(`scontrol -o show job ${shellQuote(id)}`);
    if (r.code !== 0 || !r.stdout.trim()) return undefined;
    const f = (k: string) => new RegExp(`(?:^| )${k}=(\\S*)`).exec(r.stdout)?.[1] ?? '';
    return { id, state: f('JobState'), reason: f('Reason'), nodes: f('NodeList'), exitCode: f('ExitCode'), runTime: f('RunTime') };
  }
}
