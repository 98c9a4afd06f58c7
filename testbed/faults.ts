/**
 * Worker-node faults and their diagnosis. The diagnosis is what the smoke report says when a job
 * ends before its JobAgent took a task: the repository missing under /cvmfs, or the JAliEn version
 * of the module default absent from it. The fault functions break a worker node on purpose (tests,
 * and trying the report by hand): the repository unmounted or the JAliEn package hidden in the
 * worker's own mount namespace, slurmd killed; each can be repaired.
 */
import { shellQuote } from '../base/shell-quote.ts';
import { hostExec, hostRun } from './nshost.ts';
import { join } from 'node:path';
import { findCvmfs2, mountCheckout, mountCvmfs2, repoInfo } from './repo-mount.ts';
import { startSlurmd } from './slurm.ts';
import type { HostRecord, TestbedState } from './state.ts';

/** Why a worker node cannot start a JobAgent, or undefined when its /cvmfs looks right. */
export async function diagnoseWorker(state: TestbedState, w: HostRecord): Promise<string | undefined> {
  const root = `/cvmfs/${state.repo!.name}`;
  const script = [
    `[ -x ${root}/bin/alienv ] || { echo "CVMFS on ${w.name}: ${root} is missing (not mounted)"; exit 0; }`,
    `for d in ${root}/*/Modules/modulefiles/JAliEn; do`,
    `  v=$(sed -n 's/.*ModulesVersion "\\(.*\\)".*/\\1/p' "$d/.version" 2>/dev/null)`,
    `  [ -n "$v" ] || { echo "CVMFS on ${w.name}: no JAliEn module default in $d"; exit 0; }`,
    `  p="$(dirname "$(dirname "$(dirname "$d")")")/Packages/JAliEn/$v"`,
    `  ls "$p"/lib/*.jar >/dev/null 2>&1 || { echo "CVMFS on ${w.name} lacks JAliEn $v (the module default): $p has no jars"; exit 0; }`,
    'done',
  ].join('\n');
  const r = await hostExec(w, script, { timeoutMs: 10_000 });
  return r.stdout.trim() || undefined;
}

export type CvmfsFault = 'missing' | 'no-jalien';

/** Break /cvmfs/<repo> on one worker node (in its mount namespace only). */
export async function breakCvmfs(state: TestbedState, w: HostRecord, fault: CvmfsFault): Promise<void> {
  const root = `/cvmfs/${state.repo!.name}`;
  if (fault === 'missing') {
    await hostRun(w, `umount -l ${root}`);
    return;
  }
  await hostRun(w, `for p in ${root}/*/Packages/JAliEn/*/; do mount -t tmpfs -o ro,size=1k testbed-fault "$p"; done`);
}

export async function repairCvmfs(state: TestbedState, w: HostRecord): Promise<void> {
  const root = `/cvmfs/${state.repo!.name}`;
  await hostExec(w, `awk '$1 == "testbed-fault" { print $2 }' /proc/self/mounts | xargs -r -n1 umount -l; true`);
  const mounted = (await hostExec(w, `[ -x ${root}/bin/alienv ]`)).code === 0;
  if (mounted) return;
  const cvmfs2 = state.repo?.mode === 'cvmfs2' ? findCvmfs2() : undefined;
  if (cvmfs2) await mountCvmfs2(w, cvmfs2, state.repo!.url!, repoInfo(state.repo!.dir), join(state.dir, w.name), state.repo!.tag);
  else if (state.repo?.checkout) await mountCheckout(w, state.repo.checkout, state.repo.name);
}

export async function killSlurmd(w: HostRecord): Promise<void> {
  await hostRun(w, `kill -9 $(cat /run/slurmd.pid) && rm -f /run/slurmd.pid`);
}

export async function restartSlurmd(state: TestbedState, w: HostRecord): Promise<void> {
  await hostExec(w, `[ -f /run/slurmd.pid ] && kill -0 $(cat /run/slurmd.pid) 2>/dev/null`).then(async (r) => {
    if (r.code !== 0) await startSlurmd(w, state.slurm!.conf);
  });
  // ReturnToService=2 brings a DOWN node back once slurmd registers again; resume it in case it was drained.
  const ctl = state.hosts.find((h) => h.role === 'controller')!;
  await hostExec(ctl, `SLURM_CONF=${shellQuote(state.slurm!.conf)} scontrol update nodename=${w.name} state=resume`);
}
