/**
 * Garbage collection: keeps every object reachable from the current revision, the last
 * `keepRevisions` revisions and every tagged revision (catalogs, nested catalogs, file objects),
 * plus the current certificate, history and metainfo; deletes the rest. Reflog-aware: the refs of
 * deleted catalogs/histories are dropped from the reflog and a new manifest (same revision and root)
 * is signed for the new reflog hash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCatalog } from './catalog.ts';
import { RowImageStore } from './catalog-image-store.ts';
import { objectPath } from './format.ts';
import { acquireRecovering } from './abort.ts';
import { isTempObjectName, ObjectStore, verifyAndInflate } from './object-store.ts';
import { finishPending, loadRepoKeys, readHead, readHistory, readReflog, readRepoConfig, writeHead } from './repository.ts';
import { listRevisions } from './revisions.ts';
import { assertCollectable } from './gc-flag.ts';

export interface GcResult {
  kept: number;
  removed: number;
  bytesFreed: number;
  keptRevisions: number[];
  dryRun: boolean;
}

export async function garbageCollect(repoDir: string, opts: { keepRevisions?: number; dryRun?: boolean } = {}): Promise<GcResult> {
  const dir = path.resolve(repoDir);
  const cfg = readRepoConfig(dir);
  assertCollectable(dir, cfg); // like `cvmfs_server gc` (cvmfs/server/cvmfs_server_gc.sh): only repositories created collectable
  const { lock } = acquireRecovering(dir, 'gc');
  try {
    finishPending(dir);
    const { manifest } = readHead(dir);
    const store = new ObjectStore(dir);
    const keep = new Set<string>();
    const roots = new Map<string, number>();
    for (const r of listRevisions(dir, Math.max(1, opts.keepRevisions ?? 3))) roots.set(r.rootHash, r.revision);
    const history = readHistory(store, manifest);
    for (const t of history.tags()) roots.set(t.hash, t.revision);
    history.close();
    const visitCatalog = (hash: string) => {
      const rel = objectPath(hash, 'C');
      if (keep.has(rel)) return;
      keep.add(rel);
      if (!store.has(hash, 'C')) return;
      const cat = readCatalog(verifyAndInflate(store.readCompressed(hash, 'C'), hash, rel));
      for (const row of cat.rows) if (row.hash) keep.add(objectPath(row.hash.toString('hex')));
      for (const list of cat.chunks.values()) for (const c of list) if (c.hash) keep.add(objectPath(c.hash.toString('hex'), 'P')); // chunks of chunked files
      for (const n of cat.nested) visitCatalog(n.hash);
    };
    for (const h of roots.keys()) visitCatalog(h);
    keep.add(objectPath(manifest.certificate, 'X'));
    if (manifest.history) keep.add(objectPath(manifest.history, 'H'));
    if (manifest.metainfo) keep.add(objectPath(manifest.metainfo, 'M'));
    let removed = 0;
    let bytesFreed = 0;
    const removedHashes: string[] = [];
    for (let i = 0; i < 256; i++) {
      const sub = i.toString(16).padStart(2, '0');
      const d = path.join(dir, 'data', sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        const rel = `data/${sub}/${f}`;
        if (keep.has(rel)) continue;
        const full = path.join(d, f);
        bytesFreed += fs.statSync(full).size;
        removed++;
        if (!isTempObjectName(f)) removedHashes.push(sub + f.replace(/[CHXMP]$/, ''));
        if (!opts.dryRun) fs.rmSync(full);
      }
    }
    if (!opts.dryRun) new RowImageStore(dir).prune(keep);
    if (!opts.dryRun && removed > 0) {
      // the incremental cache may name removed objects: drop it (the next publish re-reads files once)
      for (const f of ['scan-cache.bin', 'scan-cache.db', 'scan-cache.db-wal', 'scan-cache.db-shm']) fs.rmSync(path.join(dir, '.gridforge', f), { force: true });
      const reflog = readReflog(dir, cfg.name);
      for (const h of removedHashes) reflog.remove(h);
      const h2 = readHistory(store, manifest);
      await writeHead(dir, cfg, loadRepoKeys(dir, cfg), { rootHash: manifest.rootHash, rootSize: manifest.rootSize, revision: manifest.revision, history: h2, reflog, newCatalogs: [], metainfo: manifest.metainfo, timestamp: Math.floor(Date.now() / 1000) });
    }
    return { kept: keep.size, removed, bytesFreed, keptRevisions: [...new Set(roots.values())].sort((a, b) => b - a), dryRun: !!opts.dryRun };
  } finally {
    lock.release();
  }
}
