import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { DEFAULTS } from '../config/defaults';
import { sqliteDriver } from './drivers';
import { decodeEvent, encodeEvent } from '../codec/envelope';
import type { Event } from '../model/event';
import { StoreClosedError, StoreOpenError, type QueueStore, type StoredEvent } from './queue-store';

export interface SqliteStoreOptions {
  /** The database file; several endpoint queues (and their dead letters) may share one. */
  path: string;
  /** Which endpoint's queue this store holds; other queues in the same file are left alone. */
  queue: string;
  /**
   * How often a waiting `take` looks at the file, in ms. Appends through any store in this
   * process wake it at once; the poll is for appends made by another process.
   * @default 1000 (1s)
   */
  pollMs?: number;
  /**
   * How long a statement waits for another connection's write lock, in ms.
   * @default 5000 (5s)
   */
  busyTimeoutMs?: number;
  /**
   * SQLite's `synchronous` setting. `normal` (with WAL) keeps every committed append
   * through a crash or SIGKILL of the process; only a power loss or OS crash can undo the
   * last commits. `full` also fsyncs each commit, for power loss, at several times the cost.
   * @default 'normal'
   */
  synchronous?: 'normal' | 'full';
  /**
   * Called when a stored row cannot be decoded as an event. The row is moved to the
   * `queue_quarantine` table (so one bad row cannot stall the queue) and left for a person.
   */
  onCorrupt?(err: Error): void;
}

/** The schema version this code writes; a newer file is refused rather than misread. */
const SCHEMA_VERSION = 1;

export interface OpenSqliteOptions {
  /** @default 5000 */
  busyTimeoutMs?: number;
  /** @default 'normal' */
  synchronous?: 'normal' | 'full';
}

/**
 * Opens (creating if need be) a store database in WAL mode with the queue tables, and
 * turns any failure, such as a file that is not a database, into a `StoreOpenError`.
 */
export function openSqliteDatabase(path: string, options: OpenSqliteOptions = {}): Database.Database {
  let db: Database.Database | undefined;
  try {
    const Sqlite = sqliteDriver();
    db = new Sqlite(path, { timeout: options.busyTimeoutMs ?? DEFAULTS.stores.sqliteBusyTimeoutMs });
    // The first statement is where SQLite reads the header and finds out what the file is.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${(options.synchronous ?? DEFAULTS.stores.sqliteSynchronous).toUpperCase()}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this library understands (${SCHEMA_VERSION})`);
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS queue_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS queue_events_by_queue ON queue_events (queue, seq);
      CREATE TABLE IF NOT EXISTS queue_quarantine (
        seq INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL
      );
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    return db;
  } catch (err) {
    db?.close();
    throw new StoreOpenError('sqlite', path, (err as Error).message, { cause: err });
  }
}

// Waiting takes by file and queue, so an append through any store in this process wakes
// the takers of that queue without their waiting for the poll.
const waiters = new Map<string, Set<() => void>>();

interface Row {
  seq: number;
  body: string;
}

/**
 * Pending events in a SQLite file: they survive the process being killed, and memory
 * stays flat however long the backlog, since `take` reads only the rows it returns.
 * One process at a time should take from a queue; any number may append to it.
 */
export class SqliteStore implements QueueStore {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly queue: string;
  private readonly pollMs: number;
  private readonly onCorrupt?: (err: Error) => void;
  private readonly wakeKey: string;
  private readonly insert: Database.Statement<[string, string]>;
  private readonly select: Database.Statement<[string, number], Row>;
  private readonly remove: Database.Statement<[number, string]>;
  private readonly count: Database.Statement<[string], { n: number }>;
  private readonly appendAll: (events: readonly Event[]) => void;
  private readonly removeAll: (seqs: number[]) => void;
  private readonly wakeups = new Set<() => void>();
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    if (typeof options.queue !== 'string' || options.queue === '') {
      throw new TypeError(`sqlite store at ${options.path}: option "queue" must be a non-empty string`);
    }
    this.description = `sqlite:${options.path}`;
    this.queue = options.queue;
    this.pollMs = options.pollMs ?? DEFAULTS.stores.sqlitePollMs;
    this.onCorrupt = options.onCorrupt;
    this.db = openSqliteDatabase(options.path, options);
    this.wakeKey = `${fileIdentity(options.path)}\0${options.queue}`;
    this.insert = this.db.prepare('INSERT INTO queue_events (queue, body) VALUES (?, ?)');
    this.select = this.db.prepare('SELECT seq, body FROM queue_events WHERE queue = ? ORDER BY seq LIMIT ?');
    this.remove = this.db.prepare('DELETE FROM queue_events WHERE seq = ? AND queue = ?');
    this.count = this.db.prepare('SELECT count(*) AS n FROM queue_events WHERE queue = ?');
    this.appendAll = this.db.transaction((events: readonly Event[]) => {
      for (const event of events) this.insert.run(this.queue, encodeEvent(event, { indent: false, withKind: true }));
    });
    this.removeAll = this.db.transaction((seqs: number[]) => {
      for (const seq of seqs) this.remove.run(seq, this.queue);
    });
  }

  /** Commits all the events in one transaction: when this resolves they are in the file. */
  async append(events: readonly Event[]): Promise<void> {
    this.assertOpen('append');
    if (events.length === 0) return;
    this.appendAll(events);
    for (const wake of waiters.get(this.wakeKey) ?? []) wake();
  }

  async take(max: number, signal: AbortSignal, waitMs = DEFAULTS.stores.takeWaitMs): Promise<StoredEvent[]> {
    this.assertOpen('take');
    let batch = this.read(max);
    const deadline = Date.now() + waitMs;
    while (batch.length === 0 && !signal.aborted && !this.closed) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      await this.sleep(Math.min(remaining, this.pollMs), signal);
      if (!this.closed) batch = this.read(max);
    }
    return batch;
  }

  async ack(entries: readonly StoredEvent[]): Promise<void> {
    this.assertOpen('ack');
    if (entries.length > 0) this.removeAll(entries.map((e) => Number(e.key)));
  }

  async pending(): Promise<number> {
    this.assertOpen('count pending events');
    return this.count.get(this.queue)!.n;
  }

  /** Closes the file; a `take` that is waiting returns what it has (nothing). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const wake of this.wakeups) wake();
    this.db.close();
  }

  private read(max: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const row of this.select.all(this.queue, max)) {
      try {
        out.push({ key: String(row.seq), event: decodeEvent(JSON.parse(row.body), `row ${row.seq}`) });
      } catch (err) {
        this.quarantine(row, err as Error);
      }
    }
    return out;
  }

  private quarantine(row: Row, err: Error): void {
    const reason = `${this.description}: queue ${this.queue}: ${err.message}; moved to queue_quarantine`;
    this.db.transaction(() => {
      this.db
        .prepare('INSERT OR REPLACE INTO queue_quarantine (seq, queue, body, reason) VALUES (?, ?, ?, ?)')
        .run(row.seq, this.queue, row.body, err.message);
      this.remove.run(row.seq, this.queue);
    })();
    this.onCorrupt?.(new Error(reason, { cause: err }));
  }

  /** Resolves after `ms`, or sooner on an append to this queue, an abort, or close. */
  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeups.delete(done);
        const set = waiters.get(this.wakeKey);
        set?.delete(done);
        if (set?.size === 0) waiters.delete(this.wakeKey);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wakeups.add(done);
      let set = waiters.get(this.wakeKey);
      if (!set) waiters.set(this.wakeKey, (set = new Set()));
      set.add(done);
    });
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, operation);
  }
}

let privateFiles = 0;

/** The same file reached by different spellings gives the same key; `:memory:` is private to its store. */
function fileIdentity(path: string): string {
  if (path === ':memory:' || path === '') return `:memory:${++privateFiles}`;
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
