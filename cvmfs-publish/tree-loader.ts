/** Read stage for a transaction: open catalog objects from the local store into entry trees. */
import { objectPath } from './format.ts';
import { entriesFromCatalog, readCatalog, totalOf } from './catalog.ts';
import type { Entry } from './entry.ts';
import { verifyAndInflate, type ObjectStore } from './object-store.ts';

export function loadCatalogEntries(store: ObjectStore, hash: string, rootPath: string): Entry {
  const where = objectPath(hash, 'C');
  let bytes: Buffer;
  try {
    bytes = store.readCompressed(hash, 'C');
  } catch {
    throw new Error(`${where}: catalog object of ${rootPath || '/'} is missing`);
  }
  const db = verifyAndInflate(bytes, hash, where);
  const cat = readCatalog(db);
  const root = entriesFromCatalog(cat, rootPath);
  root.catalog = { hash, size: db.length, revision: Number(cat.properties.revision ?? 0), total: totalOf(cat.statistics) };
  if (rootPath !== '') root.nested = true;
  return root;
}

/** Fill an unloaded nested mountpoint with the children of its catalog. */
export function loadNested(store: ObjectStore, node: Entry, path: string): void {
  if (!node.unloaded) return;
  const loaded = loadCatalogEntries(store, node.catalog!.hash, path);
  node.children = loaded.children;
  node.catalog = loaded.catalog;
  node.unloaded = false;
}
