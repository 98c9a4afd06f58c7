/**
 * The one way a new cvmfs SQLite database (catalog, history, reflog) is started: in memory, with
 * 1 KiB pages, its schema from catalog-schema.ts, then its `properties` rows. Serialised later
 * into an object.
 */
import Database from 'better-sqlite3';

/** A new in-memory database with `schema` created and `properties` (key, value) inserted in order. */
export function newCvmfsDatabase(schema: readonly string[], properties: readonly [string, string][] = []): Database.Database {
  const db = new Database(':memory:');
  db.pragma('page_size = 1024');
  for (const sql of schema) db.exec(sql);
  const p = db.prepare('INSERT INTO properties (key, value) VALUES (?,?)');
  for (const [key, value] of properties) p.run(key, value);
  return db;
}
