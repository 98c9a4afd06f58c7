/**
 * The testbed's Slurm: the site's slurm.conf and munge key, and the daemons (munged on every host,
 * slurmctld on the controller, slurmd on each worker node) from Debian's packages. The daemons read
 * the configuration from `SLURM_CONF`, and each host's munged listens on the default socket of its
 * private /run (testbed/nshost.ts), so nothing in the machine's /etc is touched.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GridforgeError } from '../base/errors.ts';
import { shellQuote } from '../base/shell-quote.ts';
import { hostExec, hostRun, sleep } from './nshost.ts';
import type { HostRecord } from './state.ts';

export const PARTITION = 'alice';

export interface SlurmNode { name: string; address: string; cpus: number }

/** slurm.conf of the site: one controller, the worker nodes, one partition. */
export function renderSlurmConf(o: { cluster: string; controller: { name: string; address: string }; nodes: SlurmNode[]; dir: string; cloud?: { fragment: string; nodes: string } }): string {
  // cloud: the elastic pool's fragment (elastic/slurm-conf.ts, `testbed up --elastic`), which has its own SlurmctldParameters
  return [
    `# slurm.conf of the gridforge testbed (testbed/slurm.ts); the VO-box's batch client reads the same file`,
    `ClusterName=${o.cluster}`,
    `SlurmctldHost=${o.controller.name}(${o.controller.address})`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `StateSaveLocation=${join(o.dir, 'controller', 'state')}`,
    'SlurmdSpoolDir=/run/slurmd',
    'SlurmctldPidFile=/run/slurmctld.pid',
    'SlurmdPidFile=/run/slurmd.pid',
    `SlurmctldLogFile=${join(o.dir, 'controller', 'slurmctld.log')}`,
    `SlurmdLogFile=${join(o.dir, '%n', 'slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'MpiDefault=none',
    'SwitchType=switch/none',
    'SchedulerType=sched/backfill',
    'SchedulerParameters=sched_interval=1,bf_interval=1',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'SlurmdParameters=config_overrides',
    'ReturnToService=2',
    'SlurmctldTimeout=10',
    ...(o.cloud ? [] : ['SlurmctldParameters=enable_configless']),
    'SlurmdTimeout=10',
    'MessageTimeout=5',
    'TCPTimeout=2',
    'InactiveLimit=0',
    'KillWait=2',
    'MinJobAge=600',
    'JobRequeue=0',
    ...o.nodes.map((n) => `NodeName=${n.name} NodeAddr=${n.address} CPUs=${n.cpus} RealMemory=1000 State=UNKNOWN`),
    ...(o.cloud ? [o.cloud.fragment] : []),
    `PartitionName=${PARTITION} Nodes=${[...o.nodes.map((n) => n.name), ...(o.cloud ? [o.cloud.nodes] : [])].join(',')} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

/** A new munge key (1024 random bytes, as mungekey writes), root-only. */
export function writeMungeKey(file: string): void {
  writeFileSync(file, randomBytes(1024), { mode: 0o400 });
  chmodSync(file, 0o400);
}

/** munged in a host, on its private /run/munge socket, with the site's key. */
export async function startMunged(h: HostRecord, hostDir: string, mungeKey: string): Promise<void> {
  mkdirSync(hostDir, { recursive: true });
  await hostRun(
    h,
    `mkdir -p /run/munge && chmod 0755 /run/munge && munged --force --key-file=${shellQuote(mungeKey)} --socket=/run/munge/munge.socket.2 ` +
      `--pid-file=/run/munge/munged.pid --log-file=${shellQuote(join(hostDir, 'munged.log'))} --seed-file=${shellQuote(join(hostDir, 'munged.seed'))}`,
  );
}

const env = (conf: string) => `SLURM_CONF=${shellQuote(conf)}`;

export async function startSlurmctld(h: HostRecord, conf: string): Promise<void> {
  await hostRun(h, `${env(conf)} slurmctld -c`);
}

export async function startSlurmd(h: HostRecord, conf: string): Promise<void> {
  await hostRun(h, `mkdir -p /run/slurmd && ${env(conf)} slurmd -N ${h.name}`);
}

/** Wait until every node is idle (or mixed/allocated) as the controller sees it. */
export async function waitNodesUp(ctl: HostRecord, conf: string, nodes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await hostExec(ctl, `${env(conf)} sinfo -h -N -o '%N %t'`, { timeoutMs: 10_000 });
    last = r.stdout.trim() || r.stderr.trim();
    const states = new Map(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(/\s+/) as [string, string]));
    if (nodes.every((n) => /^(idle|mix|alloc)$/.test(states.get(n) ?? ''))) return;
    await sleep(300);
  }
  throw new GridforgeError(`testbed: worker nodes not up in Slurm within ${timeoutMs / 1000} s; sinfo: ${last}`, {
    hint: 'see slurmctld.log and <node>/slurmd.log in the testbed directory',
  });
}
