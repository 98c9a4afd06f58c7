/**
 * Test faults of the resume program (README "Faults"): a file `<stateDir>/<site>/faults/<node>`
 * holding `fail-start` (the node is made, then fails: resume must leave nothing and mark it DOWN)
 * or `no-register` (the node runs without slurmd: Slurm marks it DOWN after ResumeTimeout, reap
 * removes it). Files, because slurmctld starts the program with its own environment.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { siteStateDir } from './life-log.ts';
import type { Pool } from './pool.ts';

export type Fault = 'fail-start' | 'no-register';

const file = (pool: Pool, node: string) => join(siteStateDir(pool), 'faults', node);

export function readFault(pool: Pool, node: string): Fault | undefined {
  const f = file(pool, node);
  if (!existsSync(f)) return undefined;
  const v = readFileSync(f, 'utf8').trim();
  return v === 'fail-start' || v === 'no-register' ? v : undefined;
}

export function setFault(pool: Pool, node: string, fault: Fault | undefined): void {
  const f = file(pool, node);
  if (!fault) return rmSync(f, { force: true });
  mkdirSync(join(siteStateDir(pool), 'faults'), { recursive: true });
  writeFileSync(f, `${fault}\n`);
}
