/**
 * What `image sync` put into a repository, kept in the repository itself (a JSON file beside the
 * trees, `<tree dir>/.gridforge-sync.json`), so a resync knows its trees and links without a
 * local cache: trees by path (digest, source, platform, since when unlisted) and links by path.
 */
import { UsageError } from '../../base/errors.ts';
import type { RepositoryReader } from '../../cvmfs-publish/index.ts';

export interface TreeState {
  digest: string;
  source: string;
  platform: string;
  /** ms since the epoch when the wish list stopped naming it; absent while listed. */
  unlistedSince?: number;
}

export interface SyncState {
  version: 1;
  trees: Record<string, TreeState>;
  links: Record<string, string>;
}

export const STATE_FILE = '.gridforge-sync.json';

export function statePath(treeDir: string): string {
  return `${treeDir}/${STATE_FILE}`;
}

export async function readState(reader: RepositoryReader, p: string): Promise<SyncState> {
  const st = await reader.stat(p);
  if (!st) return { version: 1, trees: {}, links: {} };
  try {
    const doc = JSON.parse((await reader.readFile(p)).toString('utf8')) as SyncState;
    if (doc.version !== 1 || typeof doc.trees !== 'object' || typeof doc.links !== 'object') throw new Error('unknown shape');
    return doc;
  } catch (e) {
    throw new UsageError(`the sync state in the repository is unreadable (${(e as Error).message})`, { where: p, hint: 'Remove it with gridforge repo rm (the next sync rewrites every tree).' });
  }
}
