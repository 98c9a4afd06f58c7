/**
 * `.cvmfsreflog` (reflog_sql.cc): every catalog, certificate, history and metainfo object ever
 * published, so garbage collection knows what exists. Served next to the manifest, whose `Y` field
 * is the SHA-1 of this file.
 */
import Database from 'better-sqlite3';
import { REFLOG_SCHEMA_SQL, RefType } from './catalog-schema.ts';
import { newCvmfsDatabase } from './sqlite-db.ts';

export type RefKind = keyof typeof RefType;

export class Reflog {
  private constructor(private db: Database.Database) {}

  static create(fqrn: string): Reflog {
    return new Reflog(newCvmfsDatabase(REFLOG_SCHEMA_SQL, [['schema', '1.0'], ['schema_revision', '0'], ['fqrn', fqrn]]));
  }

  static open(bytes: Buffer): Reflog {
    return new Reflog(new Database(bytes));
  }

  add(hash: string, kind: RefKind, timestamp: number): void {
    this.db.prepare('INSERT OR IGNORE INTO refs (hash, type, timestamp) VALUES (?,?,?)').run(hash, RefType[kind], timestamp);
  }

  remove(hash: string): void {
    this.db.prepare('DELETE FROM refs WHERE hash = ?').run(hash);
  }

  refs(): { hash: string; type: number; timestamp: number }[] {
    return this.db.prepare('SELECT hash, type, timestamp FROM refs ORDER BY timestamp, hash').all() as { hash: string; type: number; timestamp: number }[];
  }

  serialize(): Buffer {
    return this.db.serialize();
  }

  close(): void {
    this.db.close();
  }
}
