/**
 * The image wish list (`gridforge image sync <wishlist.yaml>`, kept in git): which registry
 * images, which tags (globs), which platforms, and where in the repository their trees and tag
 * links go. Validated with zod through base/yaml-file.ts (errors at file:line:column); patterns are
 * checked before any registry is asked. Example in release/image-sync/README.md.
 */
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../../base/errors.ts';
import { loadYamlFile } from '../../base/yaml-file.ts';
import { MISSING_HARDLINK_POLICIES, type MissingHardlinkTarget } from '../../images/layer/hardlink-policy.ts';
import { parsePlatform } from '../../images/registry/platform.ts';
import { isRegistryRef, parseRegistryRef, type RegistryRef } from '../../images/registry/reference.ts';

export const DEFAULT_TREE = 'containers/fs/singularity/sha256-{digest}';
export const DEFAULT_LINK = 'containers/fs/singularity/{name}-{tag}{arch_suffix}';
export const DEFAULT_GRACE = '2d';
export const DEFAULT_REMOVE_BATCH = 20;

const pattern = z.string().min(1).max(1024);
const imageSchema = z.object({
  image: z.string().min(1),
  tags: z.array(z.string().min(1).max(128)).min(1),
  platforms: z.array(z.string()).min(1).optional(),
  link: pattern.optional(),
  missingHardlinkTarget: z.enum(MISSING_HARDLINK_POLICIES).optional(),
}).strict();
const schema = z.object({
  tree: pattern.default(DEFAULT_TREE),
  link: pattern.default(DEFAULT_LINK),
  platforms: z.array(z.string()).min(1).default(['linux/amd64']),
  grace: z.string().default(DEFAULT_GRACE),
  removeBatch: z.number().int().positive().default(DEFAULT_REMOVE_BATCH),
  /** Hard links whose target is missing (images/layer/hardlink-policy.ts): the default of every image. */
  missingHardlinkTarget: z.enum(MISSING_HARDLINK_POLICIES).default('refuse'),
  images: z.array(imageSchema).default([]),
}).strict();

export interface WishEntry {
  ref: RegistryRef;
  source: string;
  tags: string[];
  platforms: string[];
  link: string;
  /** The image's key, else the list's (default `refuse`). */
  missingHardlinkTarget: MissingHardlinkTarget;
}

export interface WishList {
  file: string;
  tree: string;
  /** The directory holding the trees (the tree pattern without its last component). */
  treeDir: string;
  graceMs: number;
  removeBatch: number;
  entries: WishEntry[];
}

const PLACEHOLDERS = new Set(['registry', 'repository', 'name', 'tag', 'os', 'arch', 'variant', 'arch_suffix', 'digest']);

export function parseDuration(s: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new UsageError(`${JSON.stringify(s)} is not a duration`, { where, hint: 'Write e.g. 2d, 36h, 90m, 30s or 0.' });
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
}

function checkPattern(p: string, where: string, need: string[]): void {
  for (const m of p.matchAll(/\{([^}]*)\}/g)) if (!PLACEHOLDERS.has(m[1])) throw new UsageError(`unknown placeholder {${m[1]}}`, { where, hint: `Use ${[...PLACEHOLDERS].map((x) => `{${x}}`).join(' ')}.` });
  for (const n of need) if (!p.includes(`{${n}}`)) throw new UsageError(`the pattern ${JSON.stringify(p)} must contain {${n}}`, { where, hint: n === 'digest' ? 'Trees are digest-addressed, e.g. containers/fs/singularity/sha256-{digest}.' : 'Tag links need the tag, e.g. containers/fs/singularity/{name}-{tag}{arch_suffix}.' });
  if (p.startsWith('/') || p.split('/').some((c) => c === '' || c === '.' || c === '..')) throw new UsageError(`the pattern ${JSON.stringify(p)} must be a relative path without empty, . or .. components`, { where, hint: 'E.g. containers/fs/singularity/{name}-{tag}.' });
}

export function loadWishList(file: string): WishList {
  const doc = loadYamlFile(file, schema, { missingHint: 'Give the path of the wish list YAML file.' });
  checkPattern(doc.tree, `${file}: tree`, ['digest']);
  if (!doc.tree.endsWith('{digest}') || doc.tree.split('/').pop()!.split('{').length !== 2) throw new UsageError('the tree pattern must end with a last component holding {digest} once', { where: `${file}: tree`, hint: 'E.g. containers/fs/singularity/sha256-{digest}.' });
  const treeDir = path.posix.dirname(doc.tree);
  if (treeDir.includes('{')) throw new UsageError('only the last component of the tree pattern may hold placeholders', { where: `${file}: tree`, hint: 'E.g. containers/fs/singularity/sha256-{digest}.' });
  const graceMs = parseDuration(doc.grace, `${file}: grace`);
  for (const p of doc.platforms) parsePlatform(p);
  const entries = doc.images.map((e, i): WishEntry => {
    const where = `${file}: images[${i}]`;
    if (!isRegistryRef(e.image) || e.image.includes('@')) throw new UsageError(`image ${JSON.stringify(e.image)} must be docker://<registry>/<repository> (tags go under tags:)`, { where: `${where}.image`, hint: 'E.g. image: docker://registry.example.org/alice/job' });
    const ref = parseRegistryRef(e.image);
    if (e.image.slice('docker://'.length).split('/').pop()!.includes(':')) throw new UsageError(`image ${JSON.stringify(e.image)} names a tag; list tags under tags:`, { where: `${where}.image`, hint: 'Write image: docker://<registry>/<repository> and tags: [...].' });
    const platforms = e.platforms ?? doc.platforms;
    for (const p of platforms) parsePlatform(p);
    const link = e.link ?? doc.link;
    checkPattern(link, `${where}.link`, ['tag']);
    if (platforms.length > 1 && !/\{(arch|arch_suffix|os|variant)\}/.test(link)) throw new UsageError('with several platforms the link pattern must tell them apart', { where: `${where}.link`, hint: 'Add {arch_suffix} (empty for amd64, -aarch64 for arm64) or {arch}.' });
    return { ref: { ...ref, tag: undefined }, source: e.image, tags: e.tags, platforms, link, missingHardlinkTarget: e.missingHardlinkTarget ?? doc.missingHardlinkTarget };
  });
  return { file, tree: doc.tree, treeDir, graceMs, removeBatch: doc.removeBatch, entries };
}

/** Tag glob (`*`, `?`) -> RegExp. */
export function globRe(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

export function isGlob(tag: string): boolean {
  return /[*?]/.test(tag);
}

/** Fill a pattern's placeholders. */
export function expand(p: string, v: Record<string, string>): string {
  return p.replace(/\{([^}]*)\}/g, (_, k: string) => v[k] ?? '');
}

/** '' for amd64, -aarch64 for arm64, -<arch> otherwise (so the amd64 tree keeps the plain name). */
export function archSuffix(arch: string): string {
  return arch === 'amd64' ? '' : arch === 'arm64' ? '-aarch64' : `-${arch}`;
}
