/**
 * `gridforge render slurm-elastic --site <file>`: the slurm.conf fragment of a site's pool (Slurm's
 * power saving with cloud nodes: https://slurm.schedmd.com/power_save.html and elastic_computing.html):
 * the cloud nodes, the programs, timeouts, rates and limits; and the two wrapper programs Slurm
 * runs (it passes only the host list, so the wrappers carry the site file and log to a file).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shellQuote } from '../base/shell-quote.ts';
import { writeFileAtomic } from '../base/safe-fs.ts';
import { siteStateDir } from './life-log.ts';
import { hostlistExpr, type Pool } from './pool.ts';

const GRIDFORGE_BIN = fileURLToPath(new URL('../scripts/bin/gridforge.mjs', import.meta.url));

export const programPath = (pool: Pool, what: 'resume' | 'suspend') => join(siteStateDir(pool), 'bin', `gridforge-elastic-${what}`);

export function renderSlurmElastic(pool: Pool, o: { partition?: string } = {}): string {
  const s = pool.slurm;
  const nodes = hostlistExpr(pool);
  return [
    `# Elastic worker nodes of ${pool.site} (gridforge render slurm-elastic; elastic/README.md).`,
    `# Slurm creates ${nodes} on demand through gridforge elastic resume and removes them after ${s.suspendTime} s idle.`,
    `ResumeProgram=${programPath(pool, 'resume')}`,
    `SuspendProgram=${programPath(pool, 'suspend')}`,
    `SuspendTime=${s.suspendTime}`,
    `SuspendTimeout=${s.suspendTimeout}`,
    `ResumeTimeout=${s.resumeTimeout}`,
    `ResumeRate=${s.resumeRate}`,
    `SuspendRate=${s.suspendRate}`,
    'TreeWidth=65533',
    'PrivateData=cloud',
    // no cloud_reg_addrs: it resets NodeAddr to the node name on power down, and slurmctld then
    // stalls for minutes in getaddrinfo() on names no DNS knows. Each node has its pool address instead.
    'SlurmctldParameters=enable_configless,idle_on_node_suspend',
    ...pool.nodes.map((n, i) => `NodeName=${n} NodeAddr=${pool.addresses[i]} NodeHostname=${n} State=CLOUD CPUs=${pool.cpus} RealMemory=${pool.memoryMb} Feature=${s.features || 'elastic'}`),
    ...(o.partition ? [`PartitionName=${o.partition} Nodes=${nodes} Default=YES MaxTime=INFINITE State=UP`] : [`# add ${nodes} to a partition, e.g. PartitionName=alice Nodes=<static nodes>,${nodes}`]),
    '',
  ].join('\n');
}

/** The wrappers slurmctld runs (as SlurmUser): they carry the site file and log to <stateDir>/<site>/programs.log. */
export function installPrograms(pool: Pool): string[] {
  const dir = join(siteStateDir(pool), 'bin');
  mkdirSync(dir, { recursive: true });
  const log = join(siteStateDir(pool), 'programs.log');
  return (['resume', 'suspend'] as const).map((what) => {
    const f = programPath(pool, what);
    const env = pool.slurm.conf ? `export SLURM_CONF=${shellQuote(pool.slurm.conf)}\n` : '';
    writeFileAtomic(
      f,
      `#!/bin/sh\n# Slurm's ${what === 'resume' ? 'ResumeProgram' : 'SuspendProgram'} for ${pool.site} (gridforge render slurm-elastic --install)\n${env}` +
        // the moment Slurm called the program (resume measures call -> registered from it)
        'GRIDFORGE_ELASTIC_T0=$(date +%s%3N) && export GRIDFORGE_ELASTIC_T0\n' +
        `echo "$(date -u +%FT%TZ) ${what} $*" >>${shellQuote(log)}\n` +
        `exec ${shellQuote(process.execPath)} ${shellQuote(GRIDFORGE_BIN)} elastic ${what} --site ${shellQuote(pool.siteFile)} "$@" >>${shellQuote(log)} 2>&1\n`,
    );
    chmodSync(f, 0o755);
    return f;
  });
}
