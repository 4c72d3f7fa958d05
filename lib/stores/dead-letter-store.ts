import type Database from 'better-sqlite3';
import Redis from 'ioredis';
import { decodeEvent, encodeEvent } from '../codec/envelope';
import type { Event } from '../model/event';
import { StoreClosedError } from './queue-store';
import { openSqliteDatabase, type OpenSqliteOptions } from './sqlite-store';

/** An event given up on, with why and when. */
export interface DeadLetter {
  event: Event;
  /** What the last attempt said, e.g. `HTTP 500 from https://hooks.example/registry`. */
  reason: string;
  /** When it was added, as an ISO 8601 time. */
  failedAt: string;
}

/**
 * Where an endpoint keeps the events it gave up delivering, so a person can look at them
 * and send them again. Events are named by their event id.
 */
export interface DeadLetterStore {
  readonly description: string;
  add(events: readonly Event[], reason: string): Promise<void>;
  /** The oldest dead letters first, at most `limit` (default 100). */
  list(options?: { limit?: number }): Promise<DeadLetter[]>;
  /**
   * Removes the dead letters with these event ids (all of them when `ids` is omitted) and
   * returns their events, oldest first, for the caller to queue again. Unknown ids are ignored.
   */
  replay(ids?: readonly string[]): Promise<Event[]>;
  count(): Promise<number>;
  close(): Promise<void>;
}

const DEFAULT_LIST_LIMIT = 100;

export interface MemoryDeadLetterStoreOptions {
  /**
   * Most dead letters kept; past it the oldest are forgotten. 0 means no limit.
   * @default 10000
   */
  limit?: number;
}

const DEFAULT_MEMORY_DEAD_LETTER_OPTIONS = { limit: 10_000 };

/** Dead letters in the heap, lost when the process ends; the companion of `MemoryStore`. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly description = 'memory';
  private readonly limit: number;
  private letters: DeadLetter[] = [];

  constructor(options: MemoryDeadLetterStoreOptions = {}) {
    this.limit = options.limit ?? DEFAULT_MEMORY_DEAD_LETTER_OPTIONS.limit;
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    const failedAt = new Date().toISOString();
    for (const event of events) this.letters.push({ event, reason, failedAt });
    if (this.limit > 0 && this.letters.length > this.limit) this.letters.splice(0, this.letters.length - this.limit);
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return this.letters.slice(0, options.limit ?? DEFAULT_LIST_LIMIT);
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    const wanted = ids && new Set(ids);
    const out = this.letters.filter((l) => !wanted || wanted.has(l.event.id));
    this.letters = wanted ? this.letters.filter((l) => !wanted.has(l.event.id)) : [];
    return out.map((l) => l.event);
  }

  async count(): Promise<number> {
    return this.letters.length;
  }

  async close(): Promise<void> {}
}

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

/** Dead letters in a SQLite file (table `dead_letters`), kept until replayed. */
export class SqliteDeadLetterStore implements DeadLetterStore {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly queue: string;
  private closed = false;

  constructor(options: SqliteDeadLetterStoreOptions) {
    this.description = `sqlite:${options.path}`;
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
    this.db.transaction(() => {
      for (const e of events) insert.run(this.queue, e.id, encodeEvent(e, { indent: false }), reason, failedAt);
    })();
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen('list');
    const rows = this.db
      .prepare('SELECT seq, body, reason, failed_at FROM dead_letters WHERE queue = ? ORDER BY seq LIMIT ?')
      .all(this.queue, options.limit ?? DEFAULT_LIST_LIMIT) as DeadLetterRow[];
    return rows.map((r) => ({ event: this.decode(r), reason: r.reason, failedAt: r.failed_at }));
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    this.assertOpen('replay');
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
    return (this.db.prepare('SELECT count(*) AS n FROM dead_letters WHERE queue = ?').get(this.queue) as { n: number })
      .n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private decode(row: DeadLetterRow): Event {
    return decodeEvent(JSON.parse(row.body), `${this.description}: dead letter ${row.seq}`);
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, `${operation} dead letters`);
  }
}

export interface RedisDeadLetterStoreOptions {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. */
  url?: string;
  /** A client to use instead of `url`; it stays open on `close()`. */
  client?: Redis;
  /** Which endpoint the dead letters belong to: the stream is `<prefix>:dead:<queue>`. */
  queue: string;
  /** Prefix of every key, as the queue's RedisStore. @default 'regnotify' */
  prefix?: string;
}

/** Dead letters in a Redis stream, shared by every replica, kept until replayed. */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly description: string;
  private readonly key: string;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private closed = false;

  constructor(options: RedisDeadLetterStoreOptions) {
    this.key = `${options.prefix ?? 'regnotify'}:dead:${options.queue}`;
    this.ownsClient = !options.client;
    this.client = options.client ?? new Redis(options.url!, { lazyConnect: true, maxRetriesPerRequest: 2 });
    if (this.ownsClient) this.client.on('error', () => undefined); // surfaced by the failing command
    this.description = `redis dead letters ${this.key}`;
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    this.assertOpen('add');
    const failedAt = new Date().toISOString();
    const batch = this.client.pipeline();
    for (const e of events) batch.xadd(this.key, '*', 'id', e.id, 'event', encodeEvent(e, { indent: false }), 'reason', reason, 'failedAt', failedAt);
    await batch.exec();
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen('list');
    const entries = await this.client.xrange(this.key, '-', '+', 'COUNT', options.limit ?? DEFAULT_LIST_LIMIT);
    return entries.map(([, fields]) => this.letter(fields));
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    this.assertOpen('replay');
    const wanted = ids ? new Set(ids) : undefined;
    const entries = (await this.client.xrange(this.key, '-', '+')).filter(([, f]) => !wanted || wanted.has(field(f, 'id')));
    if (entries.length === 0) return [];
    await this.client.xdel(this.key, ...entries.map(([streamId]) => streamId));
    return entries.map(([, fields]) => this.letter(fields).event);
  }

  async count(): Promise<number> {
    this.assertOpen('count');
    return this.client.xlen(this.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client.disconnect();
  }

  private letter(fields: string[]): DeadLetter {
    return {
      event: decodeEvent(JSON.parse(field(fields, 'event')), `${this.description}: dead letter`),
      reason: field(fields, 'reason'),
      failedAt: field(fields, 'failedAt'),
    };
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, operation);
  }
}

/** A field of a stream entry, given as [name, value, name, value, …]. */
function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] : '';
}

