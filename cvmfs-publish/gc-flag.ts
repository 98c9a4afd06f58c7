/**
 * Whether a repository is garbage-collectable: chosen at `repo init --gc` (like `cvmfs_server mkfs
 * -z`; off by default, as there), kept in `.gridforge/config.json`, written as `G yes` in every
 * manifest (repository.ts writeHead). `repo gc` refuses a repository that is not (as
 * `cvmfs_server gc` does, cvmfs/server/cvmfs_server_gc.sh), because Stratum-1s trust the flag:
 * under `G no` they never expect an object to vanish (cvmfs/swissknife_pull.cc). `repo set-gc`
 * turns it on later; there is no way back, since objects may already be gone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.ts';
import { writeFileAtomic } from '../base/safe-fs.ts';
import { acquireRecovering } from './abort.ts';
import { finishPending, loadRepoKeys, readHead, readHistory, readReflog, readRepoConfig, stateDir, writeHead, type RepoConfig } from './repository.ts';
import { ObjectStore } from './object-store.ts';

/** UsageError (exit 2) naming the repository and the fix when it is not garbage-collectable. */
export function assertCollectable(dir: string, cfg: RepoConfig): void {
  if (cfg.garbageCollectable === true) return;
  throw new UsageError(`repository ${cfg.name} in ${dir} is not garbage-collectable (its manifest says G no, so Stratum-1s expect every object to stay)`, {
    where: path.join(stateDir(dir), 'config.json'),
    hint: `create repositories you want to collect with \`gridforge repo init --gc\` (as \`cvmfs_server mkfs -z\`), or mark this one with \`gridforge repo set-gc ${dir}\` (then G yes; Stratum-1s start collecting too)`,
  });
}

export interface SetGcResult {
  name: string;
  garbageCollectable: true;
  /** false when it already was collectable (nothing written) */
  changed: boolean;
  revision: number;
}

/** Mark a repository garbage-collectable: config, then a manifest of the same revision saying `G yes`. */
export async function setGarbageCollectable(repoDir: string): Promise<SetGcResult> {
  const dir = path.resolve(repoDir);
  const cfg = readRepoConfig(dir);
  const { lock } = acquireRecovering(dir, 'set-gc');
  try {
    finishPending(dir);
    const { manifest } = readHead(dir);
    if (cfg.garbageCollectable === true && manifest.garbageCollectable) return { name: cfg.name, garbageCollectable: true, changed: false, revision: manifest.revision };
    // manifest first, config second: killed in between, the next publish writes G no again and gc stays refused (objects all there)
    const next = { ...cfg, garbageCollectable: true };
    const store = new ObjectStore(dir);
    await writeHead(dir, next, loadRepoKeys(dir, next), {
      rootHash: manifest.rootHash, rootSize: manifest.rootSize, revision: manifest.revision, history: readHistory(store, manifest),
      reflog: readReflog(dir, cfg.name), newCatalogs: [], metainfo: manifest.metainfo, timestamp: Math.floor(Date.now() / 1000),
    });
    const file = path.join(stateDir(dir), 'config.json');
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileAtomic(file, `${JSON.stringify({ ...raw, garbageCollectable: true }, null, 2)}\n`, { mode: 0o644, durable: true });
    return { name: cfg.name, garbageCollectable: true, changed: true, revision: manifest.revision };
  } finally {
    lock.release();
  }
}
