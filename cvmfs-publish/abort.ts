/**
 * `repo abort`: clear a stale transaction (killed publisher): roll a committed-but-unfinished head
 * forward (reflog), remove temp objects (data/txn/ and `.<hash>.<pid>...tmp` beside objects in
 * data/xx/), temp manifest/whitelist files and the lock.
 * Objects a killed publish stored completely stay (harmless; `repo gc` removes them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { RowImageStore } from './catalog-image-store.ts';
import { lockFile, readLock } from './lock.ts';
import { removeTempObjects } from './object-store.ts';
import { finishPending, readHead } from './repository.ts';

export interface AbortResult {
  hadLock: boolean;
  lockOwner?: string;
  removedTempFiles: number;
}

export function abortTransaction(repoDir: string, opts: { force?: boolean } = {}): AbortResult {
  const dir = path.resolve(repoDir);
  readHead(dir);
  const lock = readLock(dir);
  if (lock && !lock.stale && !opts.force) {
    throw new UsageError(`a publisher is still running (${lock.operation}, pid ${lock.pid} on ${lock.host})`, {
      where: lockFile(dir),
      hint: 'wait for it, or stop it first; pass --force only if you are sure it is gone',
    });
  }
  let removed = 0;
  const txn = path.join(dir, 'data', 'txn');
  if (fs.existsSync(txn)) {
    for (const f of fs.readdirSync(txn)) {
      fs.rmSync(path.join(txn, f), { force: true, recursive: true });
      removed++;
    }
  }
  removed += removeTempObjects(dir);
  for (const f of fs.readdirSync(dir)) {
    if (/^\.cvmfs.*\.\d+\.tmp$/.test(f) || /^\.\.cvmfs[a-z_]+\.[0-9a-f]{12}\.tmp$/.test(f)) { // old pid names and base/safe-fs.ts tempNameBeside
      fs.rmSync(path.join(dir, f), { force: true });
      removed++;
    }
  }
  finishPending(dir);
  const state = path.join(dir, '.gridforge');
  if (fs.existsSync(state)) for (const f of fs.readdirSync(state)) if (f.endsWith('.tmp')) { fs.rmSync(path.join(state, f), { force: true }); removed++; }
  removed += new RowImageStore(dir).removeTemp();
  if (lock) fs.rmSync(lockFile(dir), { force: true });
  return { hadLock: !!lock, lockOwner: lock ? `${lock.operation} (pid ${lock.pid})` : undefined, removedTempFiles: removed };
}
