/**
 * Every catalog row must name exactly one path component, and its md5path key must be the MD5 of
 * its parent's path + "/" + its name (cvmfs catalog_sql.cc keys rows that way; the root row of a
 * catalog is keyed by its own full path, '' for the repository root). A signed catalog can still
 * carry rows named "..", "a/b" or "" (anyone with a repository's key, or anyone who hands over a
 * repository and its config): readers and `repo checkout` would then build paths outside the tree.
 * The reader (reader.ts) refuses such a catalog before using it; `repo verify` (verify.ts) reports it.
 */
import { isSingleComponent } from '../base/safe-fs.ts';
import type { CatalogRow, OpenedCatalog } from './catalog.ts';
import { md5path } from './format.ts';

export interface NameProblem {
  /** the entry's path as the catalog spells it (names JSON-quoted when they are not plain) */
  path: string;
  problem: string;
}

function keyOf(a: bigint, b: bigint): string {
  return `${a}:${b}`;
}

/** Show a name as it is, or JSON-quoted when it holds '/', NUL or is empty/dot-only. */
export function showName(name: string): string {
  return isSingleComponent(name) ? name : JSON.stringify(name);
}

/** Why `name` cannot be a directory entry, or undefined when it can. */
export function badNameReason(name: string): string | undefined {
  if (name === '') return 'empty entry name';
  if (name === '.' || name === '..') return `entry name ${JSON.stringify(name)} is not a path component`;
  if (name.includes('/')) return `entry name ${JSON.stringify(name)} contains '/'`;
  if (name.includes('\0')) return `entry name ${JSON.stringify(name)} contains a NUL byte`;
  return undefined;
}

/**
 * Walk a catalog from its root row (keyed by `rootPath`) through the parent keys and list every
 * row whose name is not one component or whose md5path is not the MD5 of its path. Rows below a
 * bad row are not walked (their path is meaningless).
 */
export function catalogNameProblems(cat: OpenedCatalog, rootPath: string): NameProblem[] {
  const problems: NameProblem[] = [];
  const rootKey = md5path(rootPath);
  const children = new Map<string, CatalogRow[]>();
  let root: CatalogRow | undefined;
  for (const r of cat.rows) {
    if (r.md5path_1 === rootKey[0] && r.md5path_2 === rootKey[1]) {
      root = r;
      continue;
    }
    const k = keyOf(r.parent_1, r.parent_2);
    const list = children.get(k);
    if (list) list.push(r);
    else children.set(k, [r]);
  }
  if (!root) return [{ path: rootPath || '/', problem: 'no row for the catalog root (md5path key)' }];
  const stack: [CatalogRow, string][] = [[root, rootPath]];
  const seen = new Set<CatalogRow>([root]);
  while (stack.length > 0) {
    const [row, p] = stack.pop()!;
    for (const c of children.get(keyOf(row.md5path_1, row.md5path_2)) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      const cp = `${p}/${showName(c.name)}`;
      const bad = badNameReason(c.name);
      if (bad) {
        problems.push({ path: cp, problem: `${bad}: a catalog entry must be one path component` });
        continue;
      }
      const k = md5path(`${p}/${c.name}`);
      if (k[0] !== c.md5path_1 || k[1] !== c.md5path_2) {
        problems.push({ path: cp, problem: 'md5path key is not the MD5 of the parent path + "/" + name' });
        continue;
      }
      stack.push([c, `${p}/${c.name}`]);
    }
  }
  return problems;
}
