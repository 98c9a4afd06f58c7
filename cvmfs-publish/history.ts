/**
 * History database (history_sql.cc): tags with `trunk` (current) and `trunk-previous` updated at
 * every publish, plus named tags. Stored as an `H` object; each new one links the previous by the
 * `previous_revision` property.
 */
import Database from 'better-sqlite3';
import { HISTORY_SCHEMA_SQL } from './catalog-schema.ts';
import { newCvmfsDatabase } from './sqlite-db.ts';

export interface Tag {
  name: string;
  hash: string;
  revision: number;
  timestamp: number;
  channel: number;
  description: string;
  size: number;
  branch: string;
}

export class History {
  private constructor(private db: Database.Database) {}

  static create(fqrn: string): History {
    const db = newCvmfsDatabase(HISTORY_SCHEMA_SQL, [['schema', '1.0'], ['schema_revision', '3'], ['fqrn', fqrn]]);
    db.prepare("INSERT INTO branches (branch, parent, initial_revision) VALUES ('', NULL, 0)").run();
    return new History(db);
  }

  static open(bytes: Buffer): History {
    return new History(new Database(bytes));
  }

  tags(): Tag[] {
    return (this.db.prepare('SELECT * FROM tags ORDER BY revision DESC, name').all() as Tag[]).map((t) => ({ ...t, description: t.description ?? '', branch: t.branch ?? '' }));
  }

  get(name: string): Tag | undefined {
    return this.tags().find((t) => t.name === name);
  }

  property(key: string): string | undefined {
    const r = this.db.prepare('SELECT value FROM properties WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value;
  }

  setProperty(key: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO properties (key, value) VALUES (?,?)').run(key, value);
  }

  upsert(t: Omit<Tag, 'channel' | 'branch'> & { channel?: number; branch?: string }): void {
    this.db
      .prepare('INSERT OR REPLACE INTO tags (name, hash, revision, timestamp, channel, description, size, branch) VALUES (?,?,?,?,?,?,?,?)')
      .run(t.name, t.hash, t.revision, t.timestamp, t.channel ?? 0, t.description, t.size, t.branch ?? '');
  }

  remove(name: string): void {
    this.db.prepare('DELETE FROM tags WHERE name = ?').run(name);
  }

  /** Record a new head: trunk-previous <- old trunk, trunk <- new root. */
  advance(root: { hash: string; revision: number; size: number; timestamp: number }): void {
    const old = this.get('trunk');
    if (old) this.upsert({ ...old, name: 'trunk-previous', description: 'default undo target' });
    this.upsert({ name: 'trunk', hash: root.hash, revision: root.revision, timestamp: root.timestamp, description: 'current HEAD', size: root.size });
  }

  serialize(): Buffer {
    return this.db.serialize();
  }

  close(): void {
    this.db.close();
  }
}
