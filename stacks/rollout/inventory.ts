/**
 * The inventory: which site files a rollout or fleet query covers.
 * - a directory: every `*.yaml` / `*.yml` directly inside it, sorted by file name;
 * - an inventory file: `sites:` lists site files (relative to the inventory file), each a path or
 *   `{ file, canary: true }`; canaries marked there are taken first by `--canary N`.
 * Every site file is validated through the driver before anything is changed.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { readYamlFile } from '../../base/yaml-file.ts';
import { z } from 'zod';
import { UsageError } from '../../base/errors.ts';
import type { SiteDescriptor, SiteDriver } from './driver.ts';
import { selectSite } from './site-glob.ts';

export interface InventoryEntry {
  file: string;
  canary: boolean;
}

export interface InventorySite extends SiteDescriptor {
  /** Marked `canary: true` in the inventory file. */
  canary: boolean;
}

const inventoryFileSchema = z
  .object({
    sites: z
      .array(
        z.union([
          z.string().min(1),
          z.object({ file: z.string().min(1), canary: z.boolean().optional() }).strict(),
        ]),
      )
      .min(1),
  })
  .passthrough();

const isYaml = (name: string) => ['.yaml', '.yml'].includes(extname(name).toLowerCase());

/** List the site files of a sites dir or inventory file (no site file is read yet). */
export function listInventory(source: string): InventoryEntry[] {
  const path = resolve(source);
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError('no such sites directory or inventory file', {
      where: source,
      hint: 'give a directory of site files (sites/) or an inventory.yaml that lists them',
    });
  }
  if (st.isDirectory()) {
    const files = readdirSync(path)
      .filter((n) => isYaml(n) && !n.startsWith('.'))
      .sort()
      .map((n) => ({ file: join(path, n), canary: false }));
    if (files.length === 0) {
      throw new UsageError('the sites directory holds no *.yaml site file', { where: source, hint: 'add sites/<name>.yaml files (see stacks/README.md)' });
    }
    return files;
  }
  const { doc } = readYamlFile(source);
  const parsed = inventoryFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    throw new UsageError(`${key}: ${issue.message}`, {
      where: `${source}: ${key}`,
      hint: 'an inventory is `sites:` followed by a list of site files (paths relative to the inventory), each a path or { file: <path>, canary: true }',
    });
  }
  const base = dirname(path);
  const seen = new Set<string>();
  const entries: InventoryEntry[] = [];
  for (const [i, item] of parsed.data.sites.entries()) {
    const entry = typeof item === 'string' ? { file: item, canary: false } : { file: item.file, canary: item.canary ?? false };
    const file = resolve(base, entry.file);
    if (seen.has(file)) {
      throw new UsageError(`site file listed twice: ${entry.file}`, { where: `${source}: sites.${i}`, hint: 'list each site file once' });
    }
    seen.add(file);
    entries.push({ file, canary: entry.canary });
  }
  return entries;
}

/**
 * Read and validate every site file of the inventory through the driver, then apply the
 * `--only` / `--exclude` globs (matched against site names). Duplicate site names are refused.
 */
export async function loadInventory(
  source: string,
  driver: Pick<SiteDriver, 'describe'>,
  filter: { only?: string[]; exclude?: string[] } = {},
): Promise<InventorySite[]> {
  const entries = listInventory(source);
  const sites: InventorySite[] = [];
  const byName = new Map<string, string>();
  for (const entry of entries) {
    const desc = await driver.describe(entry.file);
    const other = byName.get(desc.site);
    if (other) {
      throw new UsageError(`site "${desc.site}" is defined twice (also in ${basename(other)})`, {
        where: entry.file,
        hint: 'give every site file its own `site:` name',
      });
    }
    byName.set(desc.site, entry.file);
    sites.push({ ...desc, canary: entry.canary });
  }
  const only = filter.only ?? [];
  const exclude = filter.exclude ?? [];
  const selected = sites.filter((s) => selectSite(s.site, only, exclude));
  if (selected.length === 0) {
    throw new UsageError(`no site left after --only/--exclude (${sites.length} in the inventory)`, {
      where: source,
      hint: `check the globs; sites are: ${sites.slice(0, 8).map((s) => s.site).join(', ')}${sites.length > 8 ? ', ...' : ''}`,
    });
  }
  return selected;
}
