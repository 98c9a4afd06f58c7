/** The smoke report as text: one block per job (queued -> running -> done, node, timings, output or the failing step, reason and log tail). */
import type { SmokeJob, SmokeResult } from './smoke.ts';

const secs = (v?: number) => (v === undefined ? '-' : `${v.toFixed(1)} s`);
const indent = (t: string) => t.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

function jobBlock(j: SmokeJob, jalienSource: string): string {
  const head = `job ${j.slurmId}${j.task ? ` (task ${j.task})` : ''}: ${j.ok ? 'OK' : 'FAILED'}  node ${j.node ?? '-'}  queued -> running ${secs(j.toRunningSeconds)}  queued -> done ${secs(j.toDoneSeconds)}`;
  const lines = [head];
  if (j.vm || j.jalien) lines.push(`  JobAgent on ${j.vm ?? '?'}, JAliEn ${j.jalien || '?'} (${jalienSource})`);
  if (!j.ok) lines.push(`  failed at: ${j.step}`, `  reason: ${j.reason}`);
  if (j.output.trim()) lines.push('  output:', indent(j.output));
  if (!j.ok && j.logTail.trim()) lines.push('  log tail (Slurm output of the job):', indent(j.logTail));
  return lines.join('\n');
}

export function formatSmokeReport(r: SmokeResult): string {
  const ok = r.jobs.filter((j) => j.ok).length;
  return [
    ...r.jobs.map((j) => jobBlock(j, r.jalienSource)),
    '',
    `${ok}/${r.jobs.length} jobs ok in ${r.seconds.toFixed(1)} s (${r.jobsPerMinute.toFixed(1)} jobs/min); repository on the worker nodes: ${r.cvmfs === 'cvmfs2' ? 'stock cvmfs client' : 'checkout'}${r.tag ? `, tag ${r.tag}` : ''}`,
    '',
  ].join('\n');
}
