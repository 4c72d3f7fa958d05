import type Database from 'better-sqlite3';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent } from '../codec/envelope';
import type { Event } from '../model/event';
import {
  ATTEMPTS_PER_EVENT,
  feedItem,
  idAt,
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
import { pageOf } from './memory-delivery-log';
import { StoreClosedError } from './queue-store';
import { openSqliteDatabase, type OpenSqliteOptions } from './sqlite-store';

export interface SqliteDeliveryLogOptions extends OpenSqliteOptions, Partial<DeliveryLogLimits> {
  /** The database file; usually the one the endpoints' queues use. */
  path: string;
}

/** An event first logged in the batch being written. */
interface NewRow {
  seq: number;
  endpoint: string;
  event: Event;
  state: EventState;
  attempts: number;
  aids: string[];
}

interface EventRow {
  seq: number;
  endpoint: string;
  state: EventState;
  attempts: number;
  body: string;
}

/** Most entries written in one transaction (one stretch of the event loop). */
const WRITE_CHUNK = 128;

/** Age trims run at most this often, in ms: a write past it also deletes what is too old. */
const AGE_TRIM_EVERY_MS = 1000;

/**
 * The delivery log in a SQLite file (tables `log_attempts` and `log_events`). Events are
 * indexed by id, digest and repository, so a search by any of them reads only what it
 * finds, however many attempts the log holds. One process per file, as the queue.
 */
export class SqliteDeliveryLog implements DeliveryLog {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly limits: DeliveryLogLimits;
  /** Rows per endpoint, counted once and then kept up to date, so the count bound costs no scan. */
  private readonly counts = { attempts: new Map<string, number>(), events: new Map<string, number>() };
  private trimmedAt = 0;
  /** Rows in the feed, once counted. */
  private feedCount?: number;
  private readonly searches = new Map<string, Database.Statement>();
  /** Every endpoint with rows in the file, once read. */
  private known?: Set<string>;
  private closed = false;
  private readonly stmt: Record<string, Database.Statement>;
  private readonly writeAll: (entries: readonly LogEntry[]) => void;

  constructor(options: SqliteDeliveryLogOptions) {
    this.description = `sqlite:${options.path}`;
    this.limits = {
      attempts: options.attempts ?? DEFAULTS.log.attempts,
      events: options.events ?? DEFAULTS.log.events,
      retentionMs: options.retentionMs ?? DEFAULTS.log.retentionMs,
    };
    this.db = openSqliteDatabase(options.path, options);
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
    const keep = ATTEMPTS_PER_EVENT;
    this.stmt = {
      insertAttempt: this.db.prepare('INSERT OR REPLACE INTO log_attempts (endpoint, id, body) VALUES (?, ?, ?)'),
      // The latest attempt ids, space-separated: past `keep` the first goes.
      countAttempt: this.db.prepare(`
        UPDATE log_events SET attempts = attempts + 1,
          attempt_ids = CASE WHEN attempts >= ${keep} THEN substr(attempt_ids, instr(attempt_ids, ' ') + 1) || ' ' || @aid
                             WHEN attempt_ids = '' THEN @aid ELSE attempt_ids || ' ' || @aid END
        WHERE event_id = @id AND endpoint = @endpoint`),
      // A replayed event keeps its place (seq) and adds to its attempts.
      insertEvent: this.db.prepare(`
        INSERT INTO log_events (seq, endpoint, event_id, state, attempts, attempt_ids, action, repository, digest, tag, body)
        VALUES (@seq, @endpoint, @id, @state, @attempts, @aids, @action, @repository, @digest, @tag, @body)
        ON CONFLICT (event_id, endpoint) DO UPDATE SET state = excluded.state, attempts = attempts + excluded.attempts,
          attempt_ids = trim(attempt_ids || ' ' || excluded.attempt_ids)`),
      setState: this.db.prepare('UPDATE log_events SET state = ? WHERE event_id = ? AND endpoint = ?'),
      countAttempts: this.db.prepare('SELECT count(*) AS n FROM log_attempts WHERE endpoint = ?'),
      countEvents: this.db.prepare('SELECT count(*) AS n FROM log_events WHERE endpoint = ?'),
      dropOldestAttempts: this.db.prepare(
        'DELETE FROM log_attempts WHERE endpoint = @endpoint AND id IN (SELECT id FROM log_attempts WHERE endpoint = @endpoint ORDER BY id LIMIT @n)',
      ),
      dropOldestEvents: this.db.prepare(
        'DELETE FROM log_events WHERE seq IN (SELECT seq FROM log_events WHERE endpoint = @endpoint ORDER BY seq LIMIT @n)',
      ),
      dropOldAttempts: this.db.prepare('DELETE FROM log_attempts WHERE endpoint = ? AND id < ?'),
      dropOldEvents: this.db.prepare('DELETE FROM log_events WHERE endpoint = ? AND seq < ?'),
      endpoints: this.db.prepare('SELECT DISTINCT endpoint FROM log_attempts UNION SELECT DISTINCT endpoint FROM log_events'),
      attemptsPage: this.db.prepare('SELECT body FROM log_attempts WHERE endpoint = ? AND id < ? AND id >= ? ORDER BY id DESC LIMIT ?'),
      attemptById: this.db.prepare('SELECT body FROM log_attempts WHERE endpoint = ? AND id = ?'),
      eventById: this.db.prepare('SELECT seq, endpoint, state, attempts, body FROM log_events WHERE event_id = ? AND endpoint = ? AND seq >= ?'),
      attemptIdsOf: this.db.prepare('SELECT attempt_ids FROM log_events WHERE event_id = ? AND endpoint = ?'),
      feedMax: this.db.prepare('SELECT max(seq) AS seq FROM log_feed'),
      feedInsert: this.db.prepare('INSERT OR IGNORE INTO log_feed (seq, event_id, topic, body) VALUES (@seq, @id, @topic, @body)'),
      feedCount: this.db.prepare('SELECT count(*) AS n FROM log_feed'),
      feedDropOldest: this.db.prepare('DELETE FROM log_feed WHERE seq IN (SELECT seq FROM log_feed ORDER BY seq LIMIT ?)'),
      feedDropOld: this.db.prepare('DELETE FROM log_feed WHERE seq < ?'),
      feedPage: this.db.prepare('SELECT seq, event_id AS id, topic, body FROM log_feed WHERE seq > ? ORDER BY seq LIMIT ?'),
      feedSeq: this.db.prepare('SELECT seq FROM log_feed WHERE event_id = ? AND seq >= ?'),
      feedOldest: this.db.prepare('SELECT seq, event_id AS id FROM log_feed WHERE seq >= ? ORDER BY seq LIMIT 1'),
      feedNewest: this.db.prepare('SELECT seq, event_id AS id FROM log_feed WHERE seq >= ? ORDER BY seq DESC LIMIT 1'),
      consumerGet: this.db.prepare('SELECT cursor FROM log_consumers WHERE name = ?'),
      consumerSet: this.db.prepare('INSERT INTO log_consumers (name, cursor, at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, at = excluded.at'),
      consumerDelete: this.db.prepare('DELETE FROM log_consumers WHERE name = ?'),
      consumersDropOld: this.db.prepare('DELETE FROM log_consumers WHERE at < ?'),
    };
    this.writeAll = this.db.transaction((entries: readonly LogEntry[]) => {
      const added = { attempts: new Map<string, number>(), events: new Map<string, number>() };
      const bump = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
      const logEvents = this.limits.events > 0;
      // Events that came in this batch: their attempts and later states are folded into one
      // insert, since a quick delivery puts the whole life of an event in one batch.
      const fresh = new Map<string, NewRow>();
      for (const entry of entries) {
        if (entry.kind === 'feed') {
          if (logEvents) this.addToFeed(entry.events, entry.seq);
        } else if (entry.kind === 'attempt') {
          const a = entry.attempt;
          if (this.limits.attempts > 0) {
            this.stmt.insertAttempt.run(a.endpoint, Number(a.id), JSON.stringify(a));
            bump(added.attempts, a.endpoint, 1);
          }
          if (a.test || !logEvents) continue;
          for (const id of a.eventIds) {
            const row = fresh.get(`${a.endpoint}\n${id}`);
            if (!row) {
              this.stmt.countAttempt.run({ aid: a.id, id, endpoint: a.endpoint });
              continue;
            }
            row.attempts++;
            row.aids.push(a.id);
            if (row.aids.length > ATTEMPTS_PER_EVENT) row.aids.shift();
          }
        } else if (logEvents) {
          entry.events.forEach((e, i) => {
            const key = `${entry.endpoint}\n${e.id}`;
            const row = fresh.get(key);
            if (row) row.state = entry.state;
            else if (entry.state === 'pending') fresh.set(key, { seq: entry.seq + i, endpoint: entry.endpoint, event: e, state: 'pending', attempts: 0, aids: [] });
            else this.stmt.setState.run(entry.state, e.id, entry.endpoint);
          });
        }
      }
      for (const row of fresh.values()) {
        const t = row.event.target;
        const r = this.stmt.insertEvent.run({
          seq: row.seq,
          endpoint: row.endpoint,
          id: row.event.id,
          state: row.state,
          attempts: row.attempts,
          aids: row.aids.join(' '),
          action: row.event.action,
          repository: t.repository ?? null,
          digest: t.digest ?? null,
          tag: t.tag ?? null,
          body: JSON.stringify(row.event),
        });
        // An upsert that found the row reports a change too; only a new row's rowid is its seq.
        if (Number(r.lastInsertRowid) === row.seq) bump(added.events, row.endpoint, 1);
      }
      for (const endpoint of [...added.attempts.keys(), ...added.events.keys()]) this.known?.add(endpoint);
      for (const [endpoint, n] of added.attempts) this.bound('attempts', endpoint, n);
      for (const [endpoint, n] of added.events) this.bound('events', endpoint, n);
      if (Date.now() - this.trimmedAt >= AGE_TRIM_EVERY_MS) this.trimOld();
    });
  }

  /**
   * Adds events to the feed, each with a seq above every seq in the file (another process
   * may have written since), so that a reader never sees a seq appear below one it read.
   */
  private addToFeed(events: readonly Event[], lowest: number): void {
    let seq = Math.max(lowest, ((this.stmt.feedMax.get() as { seq: number | null }).seq ?? 0) + 1);
    let added = 0;
    for (const event of events) {
      const item = feedItem(event, seq);
      if (this.stmt.feedInsert.run(item).changes > 0) seq++, added++;
    }
    this.feedCount = (this.feedCount ?? (this.stmt.feedCount.get() as { n: number }).n - added) + added;
    const over = this.feedCount - this.limits.events;
    if (over > 0) this.feedCount -= this.stmt.feedDropOldest.run(over).changes;
  }

  /** Keeps the count of an endpoint's rows at most its limit, deleting the oldest. */
  private bound(table: 'attempts' | 'events', endpoint: string, added: number): void {
    const counts = this.counts[table];
    let n = counts.get(endpoint);
    if (n === undefined) n = (this.stmt[table === 'attempts' ? 'countAttempts' : 'countEvents'].get(endpoint) as { n: number }).n;
    else n += added;
    const over = n - this.limits[table];
    if (over > 0) {
      this.stmt[table === 'attempts' ? 'dropOldestAttempts' : 'dropOldestEvents'].run({ endpoint, n: over });
      n -= over;
    }
    counts.set(endpoint, n);
  }

  private trimOld(): void {
    this.trimmedAt = Date.now();
    const cutoff = idAt(Date.now() - this.limits.retentionMs);
    // The file's endpoints are read once; those written since are added as they come.
    this.known ??= new Set((this.stmt.endpoints.all() as { endpoint: string }[]).map((r) => r.endpoint));
    for (const endpoint of this.known) {
      const a = this.stmt.dropOldAttempts.run(endpoint, cutoff).changes;
      const e = this.stmt.dropOldEvents.run(endpoint, cutoff).changes;
      if (a > 0 && this.counts.attempts.has(endpoint)) this.counts.attempts.set(endpoint, this.counts.attempts.get(endpoint)! - a);
      if (e > 0 && this.counts.events.has(endpoint)) this.counts.events.set(endpoint, this.counts.events.get(endpoint)! - e);
    }
    const f = this.stmt.feedDropOld.run(cutoff).changes;
    if (this.feedCount !== undefined) this.feedCount -= f;
    // A consumer silent for the retention window has nothing left to read after its cursor.
    this.stmt.consumersDropOld.run(Date.now() - this.limits.retentionMs);
  }

  /**
   * Writes in transactions of at most 128 entries, letting other callbacks run between
   * them: SQLite is synchronous, and a large batch in one go would hold the event loop.
   */
  async write(entries: readonly LogEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += WRITE_CHUNK) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      this.assertOpen('write');
      this.writeAll(entries.slice(i, i + WRITE_CHUNK));
    }
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
    this.db.transaction(() => this.trimOld())();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
