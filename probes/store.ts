/**
 * The results store: one SQLite file (better-sqlite3, WAL mode). Why SQLite: it is embedded (no
 * server to run beside `probe serve`), one file to copy or back up, transactional (an upload is kept
 * whole or not at all, and answered only after its commit), WAL lets `probe report` and
 * `migrate check` read while the endpoint writes, and a Grid's worth of results (hundreds of
 * thousands of rows, a few hundred bytes each) is small for it; better-sqlite3 is already a
 * dependency (the catalogs, cvmfs-publish/sqlite-db.ts). An append-only `results` table keeps every
 * upload; `latest` points at each node's newest result per probe, which is what reports read.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import { UsageError } from '../base/errors.ts';
import type { Upload } from './result.ts';

/** Marks a file as a gridforge results store (PRAGMA application_id; "GFSS"). */
const APPLICATION_ID = 0x47465353;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS results (
  id INTEGER PRIMARY KEY,
  received INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  site TEXT NOT NULL,
  ce TEXT NOT NULL,
  probe TEXT NOT NULL,
  exitcode INTEGER NOT NULL,
  execution_ms REAL NOT NULL,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
  hostname TEXT NOT NULL,
  probe TEXT NOT NULL,
  result_id INTEGER NOT NULL,
  PRIMARY KEY (hostname, probe)
) WITHOUT ROWID;
`;

/** One stored probe result (the newest per node and probe, when read through `latest`). */
export interface StoredResult {
  hostname: string;
  site: string;
  ce: string;
  probe: string;
  received: number;
  doc: string;
}

export class ResultsStore {
  readonly db: Database.Database;
  private readonly insertResult: Database.Statement;
  private readonly upsertLatest: Database.Statement;
  private readonly insertUploadsTx: (ups: Upload[], received: number) => number[];

  constructor(readonly file: string, opts: { readonly?: boolean } = {}) {
    if (opts.readonly && !fs.existsSync(file)) throw new UsageError(`no results store at ${file}`, { where: file, hint: 'give the file `gridforge probe serve --results <file>` writes' });
    try {
      this.db = new Database(file, { readonly: opts.readonly === true, fileMustExist: opts.readonly === true });
      const id = this.db.pragma('application_id', { simple: true }) as number;
      const tables = this.db.prepare(`SELECT count(*) AS n FROM sqlite_master`).get() as { n: number };
      if (id !== APPLICATION_ID && !(id === 0 && tables.n === 0)) throw new Error('not a gridforge results store');
    } catch (err) {
      throw new UsageError(`${file} is not a results store: ${(err as Error).message}`, { where: file, hint: 'give the file `gridforge probe serve --results <file>` writes' });
    }
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma(`application_id = ${APPLICATION_ID}`);
      this.db.exec(SCHEMA);
    }
    this.db.pragma('busy_timeout = 5000');
    this.insertResult = this.prepareIf(!opts.readonly, `INSERT INTO results (received, hostname, site, ce, probe, exitcode, execution_ms, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.upsertLatest = this.prepareIf(!opts.readonly, `INSERT INTO latest (hostname, probe, result_id) VALUES (?, ?, ?) ON CONFLICT (hostname, probe) DO UPDATE SET result_id = excluded.result_id`);
    this.insertUploadsTx = this.db.transaction((ups: Upload[], received: number) => ups.map((up) => this.insertOne(up, received)));
  }

  private insertOne(up: Upload, received: number): number {
    let n = 0;
    for (const [probe, r] of Object.entries(up.probes)) {
      const info = this.insertResult.run(received, up.hostname, up.site, up.ce, probe, r.EXITCODE, r.EXECUTION_TIME, JSON.stringify(r));
      this.upsertLatest.run(up.hostname, probe, info.lastInsertRowid);
      n++;
    }
    return n;
  }

  private prepareIf(writable: boolean, sql: string): Database.Statement {
    return (writable ? this.db.prepare(sql) : undefined) as Database.Statement;
  }

  /** Keep one node's upload (one row per probe), all or nothing; returns the rows written. */
  insertUpload(up: Upload, received = Date.now()): number {
    return this.insertUploadsTx([up], received)[0];
  }

  /** Keep several uploads in one transaction (all or none; the endpoint's group commit); rows per upload. */
  insertUploads(ups: Upload[], received = Date.now()): number[] {
    return this.insertUploadsTx(ups, received);
  }

  /** Rows kept (every upload ever). */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
  }

  /** Nodes known (distinct host names). */
  nodeCount(): number {
    return (this.db.prepare('SELECT count(DISTINCT hostname) AS n FROM latest').get() as { n: number }).n;
  }

  /** The newest result of every node and probe, grouped by host name (streamed, not loaded). */
  *latest(): Generator<StoredResult> {
    yield* this.db
      .prepare(`SELECT r.hostname, r.site, r.ce, r.probe, r.received, r.doc FROM latest l JOIN results r ON r.id = l.result_id ORDER BY l.hostname, l.probe`)
      .iterate() as Iterable<StoredResult>;
  }

  /** Every stored row (for exports and tests), oldest first. */
  *all(): Generator<StoredResult & { id: number }> {
    yield* this.db.prepare(`SELECT id, hostname, site, ce, probe, received, doc FROM results ORDER BY id`).iterate() as Iterable<StoredResult & { id: number }>;
  }

  close(): void {
    this.db.close();
  }
}

export function openResultsStore(file: string, opts: { readonly?: boolean } = {}): ResultsStore {
  return new ResultsStore(file, opts);
}
