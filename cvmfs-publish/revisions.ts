/**
 * Revisions and tags: list tags, tag a revision, roll back to a tag (publishes the tagged root as a
 * new revision), diff two tags, and find a revision's root catalog through the previous_revision chain.
 */
import Database from 'better-sqlite3';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { objectPath } from './format.ts';
import type { Tag } from './history.ts';
import { acquireRecovering } from './abort.ts';
import { ObjectStore, verifyAndInflate } from './object-store.ts';
import { openRepository, type StatResult } from './reader.ts';
import { finishPending, loadRepoKeys, readHead, readHistory, readReflog, readRepoConfig, writeHead } from './repository.ts';
import { checkTagName } from './transaction.ts';
import { readCatalog } from './catalog.ts';

export function listTags(repoDir: string): Tag[] {
  const { manifest } = readHead(repoDir);
  const h = readHistory(new ObjectStore(repoDir), manifest);
  try {
    return h.tags();
  } finally {
    h.close();
  }
}

export interface RevisionInfo {
  revision: number;
  rootHash: string;
  size: number;
  lastModified: number;
}

/** Walk root catalogs back through previous_revision (stops at the first missing object). */
export function listRevisions(repoDir: string, limit = Number.MAX_SAFE_INTEGER): RevisionInfo[] {
  const store = new ObjectStore(repoDir);
  const out: RevisionInfo[] = [];
  let hash = readHead(repoDir).manifest.rootHash;
  while (hash && !/^0+$/.test(hash) && out.length < limit) {
    if (!store.has(hash, 'C')) break;
    const db = verifyAndInflate(store.readCompressed(hash, 'C'), hash, objectPath(hash, 'C'));
    const cat = readCatalog(db);
    out.push({ revision: Number(cat.properties.revision), rootHash: hash, size: db.length, lastModified: Number(cat.properties.last_modified) });
    hash = cat.properties.previous_revision;
  }
  return out;
}

export async function tagRevision(repoDir: string, name: string, opts: { revision?: number; message?: string } = {}): Promise<Tag> {
  checkTagName(name);
  const cfg = readRepoConfig(repoDir);
  const { lock } = acquireRecovering(repoDir, `tag ${name}`);
  try {
    finishPending(repoDir);
    const { manifest } = readHead(repoDir);
    const store = new ObjectStore(repoDir);
    let target: RevisionInfo | undefined;
    if (opts.revision === undefined || opts.revision === manifest.revision) target = listRevisions(repoDir, 1)[0];
    else target = listRevisions(repoDir).find((r) => r.revision === opts.revision);
    if (!target) throw new UsageError(`revision ${opts.revision} is not in this repository's history`, { where: '--revision', hint: 'pick a revision listed by `gridforge repo tags` or omit --revision for the current one' });
    const history = readHistory(store, manifest);
    history.setProperty('previous_revision', manifest.history ?? '');
    const now = Math.floor(Date.now() / 1000);
    const tag = { name, hash: target.rootHash, revision: target.revision, timestamp: now, description: opts.message ?? '', size: target.size };
    history.upsert(tag);
    await writeHead(repoDir, cfg, loadRepoKeys(repoDir, cfg), { rootHash: manifest.rootHash, rootSize: manifest.rootSize, revision: manifest.revision, history, reflog: readReflog(repoDir, cfg.name), newCatalogs: [], metainfo: manifest.metainfo, timestamp: now });
    return { ...tag, channel: 0, branch: '' };
  } finally {
    lock.release();
  }
}

/** Publish the root catalog of a tag as a new revision (nested catalogs are shared, not copied). */
export async function rollback(repoDir: string, tagName: string): Promise<{ revision: number; rootHash: string; tag: string; restoredRevision: number }> {
  const cfg = readRepoConfig(repoDir);
  const { lock } = acquireRecovering(repoDir, `rollback ${tagName}`);
  try {
    finishPending(repoDir);
    const { manifest } = readHead(repoDir);
    const store = new ObjectStore(repoDir);
    const history = readHistory(store, manifest);
    const tag = history.get(tagName);
    if (!tag) throw new UsageError(`no tag "${tagName}"`, { where: tagName, hint: 'list tags with `gridforge repo tags <repo>`' });
    if (!store.has(tag.hash, 'C')) throw new GridforgeError(`the root catalog of tag ${tagName} is gone (garbage-collected?)`, { where: objectPath(tag.hash, 'C') });
    const db = new Database(verifyAndInflate(store.readCompressed(tag.hash, 'C'), tag.hash, objectPath(tag.hash, 'C')));
    const now = Math.floor(Date.now() / 1000);
    const revision = manifest.revision + 1;
    const set = db.prepare('INSERT OR REPLACE INTO properties (key, value) VALUES (?, ?)');
    set.run('revision', String(revision));
    set.run('previous_revision', manifest.rootHash);
    set.run('last_modified', String(now));
    const bytes = db.serialize();
    db.close();
    const { hash } = store.putBuffer(bytes, 'C');
    history.setProperty('previous_revision', manifest.history ?? '');
    history.advance({ hash, revision, size: bytes.length, timestamp: now });
    await writeHead(repoDir, cfg, loadRepoKeys(repoDir, cfg), { rootHash: hash, rootSize: bytes.length, revision, history, reflog: readReflog(repoDir, cfg.name), newCatalogs: [hash], metainfo: manifest.metainfo, timestamp: now });
    return { revision, rootHash: hash, tag: tagName, restoredRevision: tag.revision };
  } finally {
    lock.release();
  }
}

export interface DiffEntry {
  path: string;
  change: 'added' | 'removed' | 'modified';
  what?: string;
}

export async function diffTags(repoDirOrUrl: string, tagA: string, tagB: string, opts: { publicKey?: string } = {}): Promise<DiffEntry[]> {
  const collect = async (tag: string) => {
    const r = await openRepository(repoDirOrUrl, { publicKey: opts.publicKey, tag });
    const m = new Map<string, StatResult>();
    for await (const e of r.walk('')) m.set(e.path, e);
    return m;
  };
  const a = await collect(tagA);
  const b = await collect(tagB);
  const out: DiffEntry[] = [];
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb) out.push({ path: p, change: 'removed' });
    else {
      const what: string[] = [];
      if (ea.type !== eb.type) what.push(`type ${ea.type} -> ${eb.type}`);
      if (ea.hash !== eb.hash || chunkListOf(ea) !== chunkListOf(eb)) what.push('content');
      if (ea.target !== eb.target) what.push(`target ${ea.target} -> ${eb.target}`);
      if (ea.mode !== eb.mode) what.push(`mode ${ea.mode.toString(8)} -> ${eb.mode.toString(8)}`);
      if (ea.uid !== eb.uid || ea.gid !== eb.gid) what.push('owner');
      if (what.length) out.push({ path: p, change: 'modified', what: what.join(', ') });
    }
  }
  for (const p of b.keys()) if (!a.has(p)) out.push({ path: p, change: 'added' });
  return out.sort((x, y) => (x.path < y.path ? -1 : 1));
}

/** A chunked file's content as one comparable string (its chunk objects in order); '' otherwise. */
function chunkListOf(e: StatResult): string {
  return e.chunks ? e.chunks.map((c) => `${c.offset}+${c.size}:${c.hash}`).join(',') : '';
}
