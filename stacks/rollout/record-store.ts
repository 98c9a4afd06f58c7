/**
 * The rollout record on disk: `<dir>/<id>.json`, default dir `.gridforge/rollouts`.
 * Written atomically after every site state change (random exclusive temporary, fsync, rename), so a
 * crash at any moment leaves either the previous or the new complete record.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../base/safe-fs.ts';
import { UsageError } from '../../base/errors.ts';
import { rolloutRecordSchema, type RolloutRecord } from './types.ts';

export const DEFAULT_RECORD_DIR = '.gridforge/rollouts';

export function newRolloutId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Where the record of `idOrPath` lives: an existing .json path, or `<dir>/<id>.json`. */
export function recordPath(idOrPath: string, dir = DEFAULT_RECORD_DIR): string {
  if (idOrPath.endsWith('.json') || idOrPath.includes('/')) return resolve(idOrPath);
  if (!/^[A-Za-z0-9._-]+$/.test(idOrPath)) {
    throw new UsageError(`not a rollout id: ${idOrPath}`, { hint: 'give the id printed by `gridforge rollout` (or the path of its record)' });
  }
  return resolve(dir, `${idOrPath}.json`);
}

/**
 * Write the record atomically and durably: a random exclusive temporary beside it (never a
 * planted symlink at a guessable name), fsync, rename (base/safe-fs.ts writeFileAtomic).
 */
export function saveRecord(path: string, record: RolloutRecord): void {
  record.updatedAt = new Date().toISOString();
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, durable: true });
}

export function loadRecord(path: string): RolloutRecord {
  if (!existsSync(path)) {
    throw new UsageError('no such rollout record', {
      where: path,
      hint: 'give the id printed when the rollout started (see `gridforge rollout list`), or use --record-dir if it was started with one',
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`rollout record is not valid JSON: ${(err as Error).message}`, { where: path, hint: 'the record was edited or truncated; restore it from a backup' });
  }
  const parsed = rolloutRecordSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`rollout record is malformed at ${issue.path.join('.') || '(top level)'}: ${issue.message}`, {
      where: path,
      hint: 'the record was written by another gridforge version or edited by hand',
    });
  }
  return parsed.data;
}

/** Every record in a directory, newest first. */
export function listRecords(dir = DEFAULT_RECORD_DIR): { path: string; record: RolloutRecord }[] {
  const abs = resolve(dir);
  if (!existsSync(abs)) return [];
  const out: { path: string; record: RolloutRecord }[] = [];
  for (const name of readdirSync(abs)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    try {
      out.push({ path: join(abs, name), record: loadRecord(join(abs, name)) });
    } catch {
      /* not a record: skip */
    }
  }
  return out.sort((a, b) => b.record.createdAt.localeCompare(a.record.createdAt));
}
