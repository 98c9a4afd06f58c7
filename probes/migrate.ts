/**
 * OS migration checks: `gridforge migrate check <image>` (which nodes and sites can run an image
 * in the repository, and why the others cannot) and the gate `gridforge repo link ...
 * --require-ready <percent>` calls before it switches a link to a new image.
 */
import * as path from 'node:path';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { openRepository, readHead } from '../cvmfs-publish/index.ts';
import { readImageRequirements } from './image.ts';
import type { NodeFilter } from './nodes.ts';
import { assessReadiness, type Readiness } from './readiness.ts';
import { openResultsStore } from './store.ts';

export interface MigrateCheckOptions extends NodeFilter {
  repoDir: string;
  image: string;
  results: string;
  publicKey?: string;
  /** Repository name nodes must have mounted (default: the repository's own name). */
  repository?: string;
}

export async function migrateCheck(o: MigrateCheckOptions): Promise<Readiness> {
  const store = openResultsStore(o.results, { readonly: true });
  try {
    const reader = await openRepository(o.repoDir, { publicKey: o.publicKey });
    const req = await readImageRequirements(reader, o.image);
    const name = o.repository ?? readHead(o.repoDir).manifest.name;
    return assessReadiness(store, req, name, o);
  } finally {
    store.close();
  }
}

/** The image a link would point at: its target, relative to the link's directory. */
export function linkTargetPath(linkPath: string, target: string): string {
  const clean = linkPath.replace(/^\/+|\/+$/g, '');
  return target.startsWith('/') ? target.replace(/^\/+/, '') : path.posix.normalize(path.posix.join(path.posix.dirname(clean), target));
}

/** Parse `--require-ready` (a percentage, 0 to 100). */
export function parsePercent(v: string): number {
  const n = Number(v.replace(/%$/, ''));
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new UsageError(`--require-ready must be a percentage from 0 to 100, got "${v}"`, { where: '--require-ready', hint: 'e.g. --require-ready 95' });
  return n;
}

/** One line per site that keeps the share down: ready/nodes and its most common reasons. */
export function blockingSites(r: Readiness): string[] {
  return r.sites
    .filter((s) => s.ready < s.nodes)
    .map((s) => `${s.site}: ${s.ready}/${s.nodes} nodes ready (${s.percent}%): ${Object.entries(s.reasons).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
}

/**
 * The gate of `repo link --require-ready`: the share of nodes that can run the link's new target
 * must reach `percent`, else GridforgeError (exit 1) listing the sites that block it.
 */
export async function checkLinkReadiness(o: { repoDir: string; linkPath: string; target: string; results: string; percent: number; publicKey?: string }): Promise<Readiness> {
  const image = linkTargetPath(o.linkPath, o.target);
  const r = await migrateCheck({ repoDir: o.repoDir, image, results: o.results, publicKey: o.publicKey });
  if (r.nodes === 0 || r.percent < o.percent) {
    const lines = [
      ...r.imageProblems.map((p) => `image ${image}: ${p.detail}`),
      ...(r.nodes === 0 ? [`no node results in ${o.results}`] : blockingSites(r)),
    ];
    throw new GridforgeError(`refusing to switch ${o.linkPath} -> ${o.target}: ${r.ready} of ${r.nodes} nodes (${r.percent}%) can run ${image}, ${o.percent}% required`, {
      where: o.linkPath,
      hint: 'fix the sites below (or lower --require-ready); `gridforge migrate check` lists every node and why',
      detail: lines.join('\n'),
    });
  }
  return r;
}
