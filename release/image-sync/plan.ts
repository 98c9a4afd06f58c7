/**
 * The sync plan: every (image, tag, platform) of the wish list resolved against its registry to
 * the platform's manifest digest, a digest-addressed tree path and a tag link; compared with the
 * sync state and the repository: trees to write (new digests only), links to set or switch,
 * links to remove (no longer listed), trees to mark unlisted, and trees unlisted for longer than
 * the grace period to remove (at most `removeBatch` per run). Nothing is written here: `--dry-run`
 * prints exactly this.
 */
import path from 'node:path';
import { UsageError } from '../../base/errors.ts';
import { noProgress, type Progress } from '../../base/progress.ts';
import type { RepositoryReader } from '../../cvmfs-publish/index.ts';
import { RegistryClient } from '../../images/registry/client.ts';
import { resolveDigests } from '../../images/registry/manifest.ts';
import { formatPlatform, parsePlatform, type Platform } from '../../images/registry/platform.ts';
import type { MissingHardlinkTarget } from '../../images/layer/hardlink-policy.ts';
import { listTags } from '../../images/registry/tags.ts';
import { transportFromEnv } from '../../images/registry/transport.ts';
import { readState, statePath, type SyncState } from './state.ts';
import { archSuffix, expand, globRe, isGlob, type WishList } from './wishlist.ts';

export interface PlannedTree {
  path: string;
  digest: string;
  /** docker://registry/repository@<platform manifest digest> */
  source: string;
  platform: string;
  /** The wish list's policy for hard links whose target is missing (images/layer/hardlink-policy.ts). */
  missingHardlinkTarget: MissingHardlinkTarget;
}

export interface Plan {
  write: PlannedTree[];
  unchanged: PlannedTree[];
  link: { path: string; target: string; old?: string }[];
  unlink: { path: string; target: string }[];
  markUnlisted: string[];
  relisted: string[];
  remove: { path: string; since: number }[];
  /** Unlisted trees still inside the grace period (or beyond the batch). */
  waiting: { path: string; removableAt: number }[];
  /** Listed tags without an image for a listed platform. */
  missing: { image: string; tag: string; platform: string }[];
  statePath: string;
  state: SyncState;
  /** Anything to publish (the state included)? */
  changed: boolean;
}

interface Desired {
  trees: Map<string, PlannedTree>;
  links: Map<string, { target: string; from: string }>;
  missing: Plan['missing'];
}

/** At most this many manifest requests in flight over the whole wish list. */
const IN_FLIGHT = 8;

/** Run `fn` over `items`, `limit` at a time; the first failure stops taking new items and is thrown. */
async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const x = items[next++];
      try {
        await fn(x);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function resolveWishes(list: WishList, say: Progress): Promise<Desired> {
  const trees = new Map<string, PlannedTree>();
  const links = new Map<string, { target: string; from: string }>();
  const missing: Plan['missing'] = [];
  const transport = transportFromEnv(); // one set of keep-alive connections for the whole list
  // One client (scheme probe, token) and one config cache per repository, however many entries name it.
  const clients = new Map<string, { client: RegistryClient; configs: Map<string, Promise<Partial<Platform>>> }>();
  const clientOf = (e: WishList['entries'][number]) => {
    const key = `${e.ref.endpoint}/${e.ref.repository}`;
    let c = clients.get(key);
    if (!c) clients.set(key, (c = { client: new RegistryClient(e.ref, 'pull', transport), configs: new Map() }));
    return c;
  };
  const entryTags: string[][] = [];
  for (const e of list.entries) {
    const globs = e.tags.filter(isGlob).map(globRe);
    const all = globs.length ? await listTags(clientOf(e).client, e.source) : [];
    const tags = [...new Set([...e.tags.filter((t) => !isGlob(t)), ...all.filter((t) => globs.some((g) => g.test(t)))])].sort();
    say(`  ${e.source}: ${tags.length} tag(s)`);
    entryTags.push(tags);
  }
  // every tag's digests of every entry first (IN_FLIGHT requests at a time), then the links in a stable order
  const jobs = list.entries.flatMap((e, i) => entryTags[i].map((tag) => ({ e, i, tag, platforms: e.platforms.map(parsePlatform) })));
  const digests = new Map<string, (string | undefined)[]>();
  await pool(jobs, IN_FLIGHT, async ({ e, i, tag, platforms }) => {
    const { client, configs } = clientOf(e);
    digests.set(`${i}:${tag}`, await resolveDigests(client, tag, platforms, `${e.source}:${tag}`, configs));
  });
  list.entries.forEach((e, entry) => {
    const platforms = e.platforms.map(parsePlatform);
    const tags = entryTags[entry];
    for (const tag of tags) {
      platforms.forEach((platform, i) => {
        const digest = digests.get(`${entry}:${tag}`)![i];
        if (!digest) {
          missing.push({ image: e.source, tag, platform: formatPlatform(platform) });
          return;
        }
        const hex = digest.slice('sha256:'.length);
        const vars = { registry: e.ref.registry, repository: e.ref.repository, name: e.ref.repository.split('/').pop()!, tag, os: platform.os, arch: platform.architecture, variant: platform.variant ?? '', arch_suffix: archSuffix(platform.architecture), digest: hex };
        const treePath = expand(list.tree, vars);
        trees.set(treePath, { path: treePath, digest, source: `docker://${e.ref.registry}/${e.ref.repository}@${digest}`, platform: formatPlatform(platform), missingHardlinkTarget: e.missingHardlinkTarget });
        const linkPath = expand(e.link, vars);
        const target = path.posix.relative(path.posix.dirname(linkPath), treePath);
        const from = `${e.source}:${tag} (${formatPlatform(platform)})`;
        const prev = links.get(linkPath);
        if (prev && prev.target !== target) throw new UsageError(`two images want the link ${linkPath}: ${prev.from} and ${from}`, { where: list.file, hint: 'Make the link patterns distinct (add {name}, {tag} or {arch_suffix}).' });
        links.set(linkPath, { target, from });
      });
    }
  });
  for (const l of links.keys()) if (trees.has(l) || l === list.treeDir) throw new UsageError(`the link ${l} is also a tree path`, { where: list.file, hint: 'Keep link and tree patterns apart.' });
  return { trees, links, missing };
}

export async function planSync(list: WishList, reader: RepositoryReader, opts: { now?: number; graceMs?: number; onProgress?: Progress } = {}): Promise<Plan> {
  const say = opts.onProgress ?? noProgress;
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? list.graceMs;
  const sp = statePath(list.treeDir);
  const old = await readState(reader, sp);
  const want = await resolveWishes(list, say);
  const state: SyncState = { version: 1, trees: {}, links: {} };
  const plan: Plan = { write: [], unchanged: [], link: [], unlink: [], markUnlisted: [], relisted: [], remove: [], waiting: [], missing: want.missing, statePath: sp, state, changed: false };

  for (const t of want.trees.values()) {
    const known = old.trees[t.path];
    const st = await reader.stat(t.path);
    if (st && !known) throw new UsageError(`${t.path} exists in the repository but image sync did not write it`, { where: t.path, hint: 'Move it away (gridforge repo rm) or change the tree pattern.' });
    if (known && st?.type === 'dir' && known.digest === t.digest) plan.unchanged.push(t);
    else plan.write.push(t);
    if (known?.unlistedSince !== undefined) plan.relisted.push(t.path);
    state.trees[t.path] = { digest: t.digest, source: t.source, platform: t.platform };
  }
  for (const [p, { target }] of want.links) {
    const st = await reader.stat(p);
    if (st && old.links[p] === undefined) throw new UsageError(`${p} exists in the repository but image sync did not create it`, { where: p, hint: 'Remove it (gridforge repo rm) or change the link pattern.' });
    if (!st || st.type !== 'symlink' || st.target !== target) plan.link.push({ path: p, target, old: st?.target });
    state.links[p] = target;
  }
  for (const [p, target] of Object.entries(old.links)) if (!want.links.has(p)) plan.unlink.push({ path: p, target });
  const expired: { path: string; since: number }[] = [];
  for (const [p, t] of Object.entries(old.trees)) {
    if (want.trees.has(p)) continue;
    const since = t.unlistedSince ?? now;
    if (t.unlistedSince === undefined) plan.markUnlisted.push(p);
    if (now - since >= grace) expired.push({ path: p, since });
    else plan.waiting.push({ path: p, removableAt: since + grace });
    state.trees[p] = { ...t, unlistedSince: since };
  }
  expired.sort((a, b) => a.since - b.since || (a.path < b.path ? -1 : 1));
  plan.remove = expired.slice(0, list.removeBatch);
  for (const r of expired.slice(list.removeBatch)) plan.waiting.push({ path: r.path, removableAt: r.since + grace });
  for (const r of plan.remove) delete state.trees[r.path];
  plan.changed = plan.write.length + plan.link.length + plan.unlink.length + plan.markUnlisted.length + plan.relisted.length + plan.remove.length > 0;
  return plan;
}
