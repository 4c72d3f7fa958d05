import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import {
  idAt,
  pageOf,
  parseCursor,
  type AttemptRecord,
  type DeliveryLog,
  type DeliveryLogLimits,
  type EventQuery,
  type EventState,
  type FeedItem,
  type FeedMark,
  type FeedScan,
  type LogEntry,
  type LoggedEvent,
  type Page,
  type Paged,
} from './delivery-log';
import { StoreClosedError } from './queue-store';
import { openSqliteDatabase, type OpenSqliteOptions } from './sqlite-store';
import type { SqliteLogWorkerData, WorkerReply, WorkerRequest } from './sqlite-log-worker';
import type { PostedEvent, WriterEntry } from './sqlite-log-writer';

export interface SqliteDeliveryLogOptions extends OpenSqliteOptions, Partial<DeliveryLogLimits> {
  /** The database file; `createDeliveryLog` puts it beside the queue's (`logFileOf`). */
  path: string;
  /**
   * A file whose log tables are moved into this one when it is opened: the queue's file,
   * where earlier versions kept the log. Rows this file already has are kept.
   */
  importFrom?: string;
}

/** The tables of the log, in the order they are made. */
const LOG_TABLES = ['log_attempts', 'log_events', 'log_feed', 'log_consumers'] as const;

/**
 * Where the SQLite delivery log of a queue file is kept: a file of its own beside it
 * (`notifications.db` → `notifications-log.db`), so that the log's writer thread and the
 * queue never wait for each other's write lock.
 */
export function logFileOf(queueFile: string): string {
  const ext = path.extname(queueFile);
  return `${queueFile.slice(0, queueFile.length - ext.length)}-log${ext}`;
}

interface EventRow {
  seq: number;
  endpoint: string;
  state: EventState;
  attempts: number;
  body: string;
}

/** Requests to the worker thread and how to settle each. */
type Waiting = Map<number, { resolve: () => void; reject: (err: Error) => void }>;

/**
 * The delivery log in a SQLite file (tables `log_attempts` and `log_events`). Events are
 * indexed by id, digest and repository, so a search by any of them reads only what it
 * finds, however many attempts the log holds. One process per file, as the queue.
 *
 * Writes are made by a worker thread on a connection of its own (see
 * `sqlite-log-worker.ts`), started at the first write: the caller's thread only hands the
 * entries over, and `write` resolves once the worker committed them. Reads are made on
 * this thread's connection, and see every write that resolved before them.
 */
export class SqliteDeliveryLog implements DeliveryLog {
  readonly description: string;
  /** A delivery in the write that adds its event spares the update of the event's row. */
  readonly holdsYoungEvents = true;
  private readonly db: Database.Database;
  private readonly limits: DeliveryLogLimits;
  private readonly options: SqliteDeliveryLogOptions;
  private readonly searches = new Map<string, Database.Statement>();
  private closed = false;
  private readonly stmt: Record<string, Database.Statement>;
  private worker?: Worker;
  private requests = 0;
  private readonly waiting: Waiting = new Map();

  constructor(options: SqliteDeliveryLogOptions) {
    this.description = `sqlite:${options.path}`;
    this.options = options;
    this.limits = {
      attempts: options.attempts ?? DEFAULTS.log.attempts,
      events: options.events ?? DEFAULTS.log.events,
      retentionMs: options.retentionMs ?? DEFAULTS.log.retentionMs,
    };
    this.db = openSqliteDatabase(options.path, { ...options, queueTables: false });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS log_attempts (
        endpoint TEXT NOT NULL,
        id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (endpoint, id)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS log_events (
        seq INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        event_id TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        attempt_ids TEXT NOT NULL DEFAULT '',
        action TEXT,
        repository TEXT,
        digest TEXT,
        tag TEXT,
        body TEXT NOT NULL
      );
      CREATE UNIQUE INDEX IF NOT EXISTS log_events_by_id ON log_events (event_id, endpoint);
      CREATE INDEX IF NOT EXISTS log_events_by_endpoint ON log_events (endpoint, seq);
      CREATE INDEX IF NOT EXISTS log_events_by_digest ON log_events (digest, seq) WHERE digest IS NOT NULL;
      CREATE INDEX IF NOT EXISTS log_events_by_repository ON log_events (repository, seq) WHERE repository IS NOT NULL;
      CREATE TABLE IF NOT EXISTS log_feed (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS log_consumers (
        name TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
    if (options.importFrom !== undefined) this.importTables(options.importFrom);
    this.stmt = {
      attemptsPage: this.db.prepare('SELECT body FROM log_attempts WHERE endpoint = ? AND id < ? AND id >= ? ORDER BY id DESC LIMIT ?'),
      attemptById: this.db.prepare('SELECT body FROM log_attempts WHERE endpoint = ? AND id = ?'),
      eventById: this.db.prepare('SELECT seq, endpoint, state, attempts, body FROM log_events WHERE event_id = ? AND endpoint = ? AND seq >= ?'),
      attemptIdsOf: this.db.prepare('SELECT attempt_ids FROM log_events WHERE event_id = ? AND endpoint = ?'),
      feedPage: this.db.prepare('SELECT seq, event_id AS id, topic, body FROM log_feed WHERE seq > ? ORDER BY seq LIMIT ?'),
      feedSeq: this.db.prepare('SELECT seq FROM log_feed WHERE event_id = ? AND seq >= ?'),
      feedOldest: this.db.prepare('SELECT seq, event_id AS id FROM log_feed WHERE seq >= ? ORDER BY seq LIMIT 1'),
      feedNewest: this.db.prepare('SELECT seq, event_id AS id FROM log_feed WHERE seq >= ? ORDER BY seq DESC LIMIT 1'),
      consumerGet: this.db.prepare('SELECT cursor FROM log_consumers WHERE name = ?'),
      consumerSet: this.db.prepare('INSERT INTO log_consumers (name, cursor, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, at = excluded.at'),
      consumerDelete: this.db.prepare('DELETE FROM log_consumers WHERE name = ?'),
    };
  }

  /**
   * Moves the log tables of `file` (an earlier version kept them in the queue's file) into
   * this one: copied, then dropped there, so that it happens once. Should the process stop
   * between the two, the next start copies again and keeps the rows already here.
   */
  private importTables(file: string): void {
    if (path.resolve(file) === path.resolve(this.options.path) || !existsSync(file)) return;
    try {
      this.db.prepare('ATTACH DATABASE ? AS earlier').run(file);
    } catch {
      // Not a database: the queue's store, opening it next, says so and names it.
      return;
    }
    try {
      const tables = this.earlierLogTables();
      if (tables.length === 0) return;
      this.db.transaction(() => {
        for (const table of tables) {
          this.db.exec(`INSERT OR IGNORE INTO main.${table} SELECT * FROM earlier.${table}`);
          this.db.exec(`DROP TABLE earlier.${table}`);
        }
      })();
    } catch (err) {
      throw new Error(`sqlite delivery log ${this.options.path}: could not move the log tables of ${file} into it: ${(err as Error).message}`, { cause: err });
    } finally {
      this.db.exec('DETACH DATABASE earlier');
    }
  }

  /** The log tables the attached `earlier` file has; none when its schema cannot be read (the queue's store reports the damage). */
  private earlierLogTables(): string[] {
    try {
      const present = new Set((this.db.prepare("SELECT name FROM earlier.sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
      return LOG_TABLES.filter((t) => present.has(t));
    } catch {
      return [];
    }
  }

  /**
   * Hands the entries to the worker thread (a copy is made as they are posted); resolves
   * once it committed them. A state change needs only the events' ids: those go alone. A
   * new event goes as its JSON (the SQLite queue's, made when it was appended) and the
   * fields its columns hold.
   */
  async write(entries: readonly LogEntry[]): Promise<void> {
    this.assertOpen('write');
    if (entries.length === 0) return;
    const posted = entries.map((e): WriterEntry => {
      if (e.kind !== 'events') return e;
      const { state } = e;
      return state === 'pending' ? { ...e, state, events: e.events.map(forWorker) } : { ...e, state, events: e.events.map(idOnly) };
    });
    await this.request({ op: 'write', entries: posted });
  }

  /** Sends a request to the worker thread (starting it if need be) and waits for its answer. */
  private request(request: { op: 'write'; entries: readonly WriterEntry[] } | { op: 'trim' }): Promise<void> {
    const worker = this.start();
    const n = ++this.requests;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(n, { resolve, reject });
      // The worker keeps the process alive only while it has work to answer.
      if (this.waiting.size === 1) worker.ref();
      try {
        worker.postMessage({ ...request, n } satisfies WorkerRequest);
      } catch (err) {
        this.settle({ n, error: (err as Error).message });
      }
    });
  }

  private settle(reply: WorkerReply): void {
    const waiter = this.waiting.get(reply.n);
    if (!waiter) return;
    this.waiting.delete(reply.n);
    if (this.waiting.size === 0) this.worker?.unref();
    if (reply.error === undefined) waiter.resolve();
    else waiter.reject(new Error(reply.error));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const workerData: SqliteLogWorkerData = {
      path: this.options.path,
      busyTimeoutMs: this.options.busyTimeoutMs ?? DEFAULTS.stores.sqliteBusyTimeoutMs,
      synchronous: this.options.synchronous ?? DEFAULTS.stores.sqliteSynchronous,
      limits: this.limits,
    };
    const worker = startWorker(workerData);
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    const lost = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const n of [...this.waiting.keys()]) this.settle({ n, error: `the log's worker thread ${why}` });
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited (code ${code})`));
    worker.unref();
    return (this.worker = worker);
  }

  async attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>> {
    this.assertOpen('read');
    const before = parseCursor(page.cursor) ?? Number.MAX_SAFE_INTEGER;
    const rows = this.stmt.attemptsPage.all(endpoint, before, this.cutoff(), page.limit + 1) as { body: string }[];
    return pageOf(
      rows.map((r) => JSON.parse(r.body) as AttemptRecord),
      page.limit,
      (a) => a.id,
    );
  }

  async events(q: EventQuery): Promise<Paged<LoggedEvent>> {
    this.assertOpen('search');
    if (q.endpoints.length === 0) return { items: [], next: null };
    const before = parseCursor(q.cursor) ?? Number.MAX_SAFE_INTEGER;
    const from = Math.max(this.cutoff(), q.fromMs === undefined ? 0 : idAt(q.fromMs));
    const where = ['seq < ?', 'seq >= ?'];
    const args: unknown[] = [before, from];
    if (q.toMs !== undefined) where.push('seq < ?'), args.push(idAt(q.toMs));
    for (const [column, value] of [
      ['event_id', q.id],
      ['digest', q.digest],
      ['repository', q.repository],
      ['tag', q.tag],
      ['action', q.action],
      ['state', q.state],
    ] as const) {
      if (value !== undefined) where.push(`${column} = ?`), args.push(value);
    }
    const select = (endpoints: readonly string[]) =>
      this.prepared(
        `SELECT seq, endpoint, state, attempts, body FROM log_events
         WHERE ${[...where, `endpoint IN (${endpoints.map(() => '?').join(', ')})`].join(' AND ')} ORDER BY seq DESC LIMIT ?`,
      ).all(...args, ...endpoints, q.limit + 1) as EventRow[];
    // With an id, digest or repository their index finds the rows. Without, each endpoint's
    // index is read newest first, apart, and the pages merged: one query over several
    // endpoints would sort every row they hold.
    const indexed = q.id !== undefined || q.digest !== undefined || q.repository !== undefined;
    const rows = indexed
      ? select(q.endpoints)
      : q.endpoints
          .flatMap((endpoint) => select([endpoint]))
          .sort((a, b) => b.seq - a.seq)
          .slice(0, q.limit + 1);
    return pageOf(rows.map((r) => this.decode(r)), q.limit, (e) => e.seq);
  }

  async event(id: string, endpoints: readonly string[]): Promise<LoggedEvent[]> {
    this.assertOpen('read');
    const cutoff = this.cutoff();
    return endpoints.flatMap((endpoint) => {
      const row = this.stmt.eventById.get(id, endpoint, cutoff) as EventRow | undefined;
      return row ? [this.decode(row)] : [];
    });
  }

  async eventAttempts(endpoint: string, eventId: string): Promise<AttemptRecord[]> {
    this.assertOpen('read');
    const row = this.stmt.attemptIdsOf.get(eventId, endpoint) as { attempt_ids: string } | undefined;
    const ids = row?.attempt_ids ? row.attempt_ids.split(' ') : [];
    return ids.flatMap((id) => {
      const a = this.stmt.attemptById.get(endpoint, Number(id)) as { body: string } | undefined;
      return a ? [JSON.parse(a.body) as AttemptRecord] : [];
    });
  }

  async trim(): Promise<void> {
    this.assertOpen('trim');
    await this.request({ op: 'trim' });
  }

  /** Waits for the writes handed over, stops the worker thread and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (worker) {
      worker.ref();
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ op: 'close', n: ++this.requests } satisfies WorkerRequest);
      });
    }
    this.db.close();
  }

  async feedRead(after: number | undefined, limit: number, topics: ReadonlySet<string> | undefined, scan: number): Promise<FeedScan> {
    this.assertOpen('read the feed of');
    let from = Math.max(after ?? -1, this.cutoff() - 1);
    const events: FeedItem[] = [];
    let last: FeedMark | undefined;
    let scanned = 0;
    // Without topics every row read is on the page; with them, rows are read in chunks.
    const chunk = topics ? Math.max(limit, 500) : limit;
    while (events.length < limit && scanned < scan) {
      const rows = this.stmt.feedPage.all(from, Math.min(chunk, scan - scanned)) as FeedItem[];
      for (const row of rows) {
        scanned++;
        last = { seq: row.seq, id: row.id };
        from = row.seq;
        if (!topics || topics.has(row.topic)) events.push(row);
        if (events.length === limit) break;
      }
      if (rows.length < chunk) break;
    }
    return { events, last };
  }

  async feedSeq(eventId: string): Promise<number | undefined> {
    this.assertOpen('read the feed of');
    return (this.stmt.feedSeq.get(eventId, this.cutoff()) as { seq: number } | undefined)?.seq;
  }

  async feedBounds(): Promise<{ oldest?: FeedMark; newest?: FeedMark }> {
    this.assertOpen('read the feed of');
    const cutoff = this.cutoff();
    return { oldest: this.stmt.feedOldest.get(cutoff) as FeedMark | undefined, newest: this.stmt.feedNewest.get(cutoff) as FeedMark | undefined };
  }

  async consumerCursor(name: string): Promise<string | undefined> {
    this.assertOpen('read a consumer of');
    return (this.stmt.consumerGet.get(name) as { cursor: string } | undefined)?.cursor;
  }

  async setConsumerCursor(name: string, cursor: string | undefined): Promise<void> {
    this.assertOpen('save a consumer in');
    if (cursor === undefined) this.stmt.consumerDelete.run(name);
    else this.stmt.consumerSet.run(name, cursor, Date.now());
  }

  /** A search's statement, prepared once per shape of query. */
  private prepared(sql: string): Database.Statement {
    let stmt = this.searches.get(sql);
    if (!stmt) {
      if (this.searches.size >= 200) this.searches.clear();
      this.searches.set(sql, (stmt = this.db.prepare(sql)));
    }
    return stmt;
  }

  private cutoff(): number {
    return idAt(Date.now() - this.limits.retentionMs);
  }

  private decode(row: EventRow): LoggedEvent {
    return {
      seq: String(row.seq),
      endpoint: row.endpoint,
      state: row.state,
      attempts: row.attempts,
      event: decodeEvent(JSON.parse(row.body), `${this.description}: logged event ${row.seq}`),
    };
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, `${operation} the delivery log`);
  }
}

/** An event reduced to its id, which is all a state change needs of it. */
function idOnly(event: Event): Pick<Event, 'id'> {
  return { id: event.id };
}

/** A new event as the worker writes it; flat strings cost less to copy to it than the event's objects. */
function forWorker(event: Event): PostedEvent {
  const t = event.target;
  return { id: event.id, action: event.action, target: { repository: t.repository, digest: t.digest, tag: t.tag }, json: storedEventJson(event) };
}

/**
 * Starts the log's worker thread. Compiled, it is a file beside this one; from TypeScript
 * sources (tests, benchmarks) the worker loads tsx's hook first to read them.
 */
function startWorker(workerData: SqliteLogWorkerData): Worker {
  const file = path.join(__dirname, `sqlite-log-worker${path.extname(__filename)}`);
  if (!file.endsWith('.ts')) return new Worker(file, { workerData });
  const hook = require.resolve('tsx/cjs');
  return new Worker(`require(${JSON.stringify(hook)}); require(${JSON.stringify(file)});`, { eval: true, workerData });
}
