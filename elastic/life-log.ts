/**
 * Every node's life, append-only: one JSON line per event in `<stateDir>/<site>/nodes.jsonl`
 * (resume, created, registered, running, idle, suspend, removed, failed, reaped; with the time and
 * details). Written by the resume/suspend programs (run by slurmctld), reap and status; read by
 * `elastic status`. Lines are short single write(2)s with O_APPEND, so concurrent programs do not
 * interleave.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from './pool.ts';

export type LifeEvent = 'resume' | 'created' | 'registered' | 'running' | 'idle' | 'suspend' | 'removed' | 'failed' | 'reaped' | 'marked-down';

export interface LifeRecord { t: string; node: string; event: LifeEvent; [k: string]: unknown }

export function siteStateDir(pool: Pool): string {
  return join(pool.stateDir, pool.site);
}

export function lifeLogPath(pool: Pool): string {
  return join(siteStateDir(pool), 'nodes.jsonl');
}

export function record(pool: Pool, node: string, event: LifeEvent, detail: Record<string, unknown> = {}): LifeRecord {
  const r: LifeRecord = { t: new Date().toISOString(), node, event, ...detail };
  mkdirSync(siteStateDir(pool), { recursive: true });
  appendFileSync(lifeLogPath(pool), `${JSON.stringify(r)}\n`);
  return r;
}

export function readLife(pool: Pool): LifeRecord[] {
  const f = lifeLogPath(pool);
  if (!existsSync(f)) return [];
  const out: LifeRecord[] = [];
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as LifeRecord);
    } catch {
      /* a torn last line of a killed program */
    }
  }
  return out;
}
