import type Database from 'better-sqlite3';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import type { DeadLetter, DeadLetterStore } from './dead-letter-store';
import { StoreClosedError } from './queue-store';
import { openSqliteDatabase, sqliteCorruption, type OpenSqliteOptions } from './sqlite-store';

export interface SqliteDeadLetterStoreOptions extends OpenSqliteOptions {
  /** The database file; usually the same one the endpoint's `SqliteStore` uses. */
  path: string;
  /** Which endpoint the dead letters belong to. */
  queue: string;
}

interface DeadLetterRow {
  seq: number;
  body: string;
  reason: string;
  failed_at: string;
}

/**
 * Dead letters in a SQLite file (table `dead_letters`), kept until replayed. An operation
 * that finds the file damaged rejects with a `StoreCorruptError`.
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly queue: string;
  private closed = false;

  constructor(options: SqliteDeadLetterStoreOptions) {
    this.description = `sqlite:${options.path}`;
    this.path = options.path;
    this.queue = options.queue;
    this.db = openSqliteDatabase(options.path, options);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS dead_letters (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS dead_letters_by_event ON dead_letters (queue, event_id);
    `);
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    this.assertOpen('add');
    const insert = this.db.prepare(
      'INSERT INTO dead_letters (queue, event_id, body, reason, failed_at) VALUES (?, ?, ?, ?, ?)',
    );
    const failedAt = new Date().toISOString();
    this.guard('adding dead letters', () =>
      this.db.transaction(() => {
        for (const e of events) insert.run(this.queue, e.id, storedEventJson(e), reason, failedAt);
      })(),
    );
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen('list');
    const rows = this.guard(
      'listing dead letters',
      () =>
        this.db
          .prepare('SELECT seq, body, reason, failed_at FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?')
          .all(this.queue, options.limit ?? DEFAULTS.stores.deadLetterListLimit) as DeadLetterRow[],
    );
    return rows.map((r) => ({ event: this.decode(r), reason: r.reason, failedAt: r.failed_at }));
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    this.assertOpen('replay');
    return this.guard('replaying dead letters', () => this.takeRows(ids));
  }

  /** Removes and returns the chosen events, in one transaction: none is removed if one cannot be read. */
  private takeRows(ids?: readonly string[]): Event[] {
    return this.db.transaction(() => {
      let rows: DeadLetterRow[];
      if (ids) {
        const select = this.db.prepare(
          'SELECT seq, body, reason, failed_at FROM dead_letters WHERE queue = ? AND event_id = ? ORDER BY seq',
        );
        rows = ids.flatMap((id) => select.all(this.queue, id) as DeadLetterRow[]).sort((a, b) => a.seq - b.seq);
      } else {
        rows = this.db
          .prepare('SELECT seq, body, reason, failed_at FROM dead_letters WHERE queue = ? ORDER BY seq')
          .all(this.queue) as DeadLetterRow[];
      }
      const remove = this.db.prepare('DELETE FROM dead_letters WHERE seq = ?');
      for (const r of rows) remove.run(r.seq);
      return rows.map((r) => this.decode(r));
    })();
  }

  async count(): Promise<number> {
    this.assertOpen('count');
    return this.guard(
      'counting dead letters',
      () => (this.db.prepare('SELECT count(*) AS n FROM dead_letters WHERE queue = ?').get(this.queue) as { n: number }).n,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private decode(row: DeadLetterRow): Event {
    return decodeEvent(JSON.parse(row.body), `${this.description}: dead letter ${row.seq}`);
  }

  /** Runs one operation on the file; an error saying the file is damaged becomes a `StoreCorruptError`. */
  private guard<T>(operation: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw sqliteCorruption(this.description, this.path, operation, err) ?? err;
    }
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, `${operation} dead letters`);
  }
}
