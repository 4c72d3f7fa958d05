import type Database from 'better-sqlite3';
import { storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import { ATTEMPTS_PER_EVENT, feedItem, idAt, type AttemptRecord, type DeliveryLogLimits, type EventState, type LogEntry } from './delivery-log';

/**
 * A new event as `SqliteDeliveryLog` posts it to the worker: the fields its columns hold
 * and its JSON, made on the main thread (the SQLite queue's string, when it made one).
 */
export interface PostedEvent {
  id: string;
  action: Event['action'];
  target: Pick<Event['target'], 'repository' | 'digest' | 'tag'>;
  json: string;
}

/**
 * An entry as the writer takes it. `SqliteDeliveryLog` posts a state change's events as
 * their ids alone, and new (pending) events as `PostedEvent`s; a caller in the same
 * thread may give whole events.
 */
export type WriterEntry =
  | Exclude<LogEntry, { kind: 'events' }>
  | (Omit<EventsEntry, 'state' | 'events'> & { state: 'pending'; events: readonly (Event | PostedEvent)[] })
  | (Omit<EventsEntry, 'state' | 'events'> & { state: Exclude<EventState, 'pending'>; events: readonly Pick<Event, 'id'>[] });
type EventsEntry = Extract<LogEntry, { kind: 'events' }>;

/** An event first logged in the entries being written. */
interface NewRow {
  seq: number;
  endpoint: string;
  /** As posted, or a whole event (from a caller in the same thread). */
  event: Event | PostedEvent;
  state: EventState;
  attempts: number;
  aids: string[];
}

/** What a write changes of an event logged before it: its new attempts (their ids) and its latest state. */
interface Change {
  kind: 'change';
  endpoint: string;
  id: string;
  aids: string[];
  state?: EventState;
}

/** One statement (or a few, for a feed entry or a change) of a write, in the order they run. */
type Op =
  | { kind: 'feed'; events: readonly Event[]; seq: number }
  | { kind: 'attempt'; attempt: AttemptRecord }
  | Change
  | { kind: 'event'; row: NewRow };

/**
 * Most statements written in one transaction. The log has its file to itself and readers
 * see the last commit meanwhile, so a large one holds up nothing; each commit writes the
 * pages it changed, so a page that several transactions change is written by each.
 */
const WRITE_CHUNK = 4096;

/** Age trims run at most this often, in ms: a write past it also deletes what is too old. */
const AGE_TRIM_EVERY_MS = 1000;

/**
 * The tables of the SQLite delivery log, and what writes to them: `SqliteDeliveryLog`
 * runs one in a worker thread, on a connection of its own, so that the delivery
 * process's main thread only hands the entries over.
 */
export class SqliteLogWriter {
  /** Rows per endpoint, counted once and then kept up to date, so the count bound costs no scan. */
  private readonly counts = { attempts: new Map<string, number>(), events: new Map<string, number>() };
  private trimmedAt = 0;
  /** Rows in the feed, once counted. */
  private feedCount?: number;
  /** Every endpoint with rows in the file, once read. */
  private known?: Set<string>;
  private readonly stmt: Record<string, Database.Statement>;
  private readonly writeChunk: (ops: readonly Op[], last: boolean) => void;

  constructor(
    private readonly db: Database.Database,
    private readonly limits: DeliveryLogLimits,
  ) {
    // The latest attempt ids, space-separated: past `keep` the first goes. Its three values
    // are the new attempt's id.
    const appendAid = `attempt_ids = CASE WHEN attempts >= ${ATTEMPTS_PER_EVENT} THEN substr(attempt_ids, instr(attempt_ids, ' ') + 1) || ' ' || ?
                             WHEN attempt_ids = '' THEN ? ELSE attempt_ids || ' ' || ? END`;
    this.stmt = {
      insertAttempt: db.prepare('INSERT OR REPLACE INTO log_attempts (endpoint, id, body) VALUES (?, ?, ?)'),
      // Values by position ([state,] the attempt id three times, event id, endpoint): binding
      // an object's named fields costs more than the update, which runs per event delivered.
      countAttempt: db.prepare(`
        UPDATE log_events SET attempts = attempts + 1, ${appendAid}
        WHERE event_id = ? AND endpoint = ?`),
      // The usual change of an event logged before: tried once more, and delivered (or given up on).
      countAttemptAndState: db.prepare(`
        UPDATE log_events SET state = ?, attempts = attempts + 1, ${appendAid}
        WHERE event_id = ? AND endpoint = ?`),
      // A replayed event keeps its place (seq) and adds to its attempts.
      insertEvent: db.prepare(`
        INSERT INTO log_events (seq, endpoint, event_id, state, attempts, attempt_ids, action, repository, digest, tag, body)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (event_id, endpoint) DO UPDATE SET state = excluded.state, attempts = attempts + excluded.attempts,
          attempt_ids = trim(attempt_ids || ' ' || excluded.attempt_ids)`),
      setState: db.prepare('UPDATE log_events SET state = ? WHERE event_id = ? AND endpoint = ?'),
      countAttempts: db.prepare('SELECT count(*) AS n FROM log_attempts WHERE endpoint = ?'),
      countEvents: db.prepare('SELECT count(*) AS n FROM log_events WHERE endpoint = ?'),
      dropOldestAttempts: db.prepare(
        'DELETE FROM log_attempts WHERE endpoint = @endpoint AND id IN (SELECT id FROM log_attempts WHERE endpoint = @endpoint ORDER BY id LIMIT @n)',
      ),
      dropOldestEvents: db.prepare('DELETE FROM log_events WHERE seq IN (SELECT seq FROM log_events WHERE endpoint = @endpoint ORDER BY seq LIMIT @n)'),
      dropOldAttempts: db.prepare('DELETE FROM log_attempts WHERE endpoint = ? AND id < ?'),
      dropOldEvents: db.prepare('DELETE FROM log_events WHERE endpoint = ? AND seq < ?'),
      endpoints: db.prepare('SELECT DISTINCT endpoint FROM log_attempts UNION SELECT DISTINCT endpoint FROM log_events'),
      feedMax: db.prepare('SELECT max(seq) AS seq FROM log_feed'),
      feedInsert: db.prepare('INSERT OR IGNORE INTO log_feed (seq, event_id, topic, body) VALUES (@seq, @id, @topic, @body)'),
      feedCount: db.prepare('SELECT count(*) AS n FROM log_feed'),
      feedDropOldest: db.prepare('DELETE FROM log_feed WHERE seq IN (SELECT seq FROM log_feed ORDER BY seq LIMIT ?)'),
      feedDropOld: db.prepare('DELETE FROM log_feed WHERE seq < ?'),
      consumersDropOld: db.prepare('DELETE FROM log_consumers WHERE at < ?'),
    };
    this.writeChunk = db.transaction((ops: readonly Op[], last: boolean) => this.apply(ops, last));
  }

  /**
   * Applies the entries in order. Events that first came in these entries are folded
   * into one row each, with their attempts and latest state, since a quick delivery puts
   * the whole life of an event in one write; the rest is written as it came, in
   * transactions of up to a few thousand statements.
   */
  write(entries: readonly (LogEntry | WriterEntry)[]): void {
    const logEvents = this.limits.events > 0;
    const fresh = new Map<string, NewRow>();
    // Changes of events logged before, one per event, where the event first changed.
    const changes = new Map<string, Change>();
    const changeOf = (endpoint: string, id: string, key: string) => {
      let change = changes.get(key);
      if (!change) {
        changes.set(key, (change = { kind: 'change', endpoint, id, aids: [] }));
        ops.push(change);
      }
      return change;
    };
    const ops: Op[] = [];
    for (const entry of entries) {
      if (entry.kind === 'feed') {
        if (logEvents) ops.push({ kind: 'feed', events: entry.events, seq: entry.seq });
      } else if (entry.kind === 'attempt') {
        const a = entry.attempt;
        if (this.limits.attempts > 0) ops.push({ kind: 'attempt', attempt: a });
        if (a.test || !logEvents) continue;
        for (const id of a.eventIds) {
          const key = `${a.endpoint}\n${id}`;
          const row = fresh.get(key);
          if (!row) {
            changeOf(a.endpoint, id, key).aids.push(a.id);
            continue;
          }
          row.attempts++;
          row.aids.push(a.id);
          if (row.aids.length > ATTEMPTS_PER_EVENT) row.aids.shift();
        }
      } else if (logEvents) {
        const { endpoint, seq } = entry;
        for (let i = 0; i < entry.events.length; i++) {
          const key = `${endpoint}\n${entry.events[i].id}`;
          const row = fresh.get(key);
          if (row) row.state = entry.state;
          else if (entry.state === 'pending') fresh.set(key, { seq: seq + i, endpoint, event: entry.events[i], state: 'pending', attempts: 0, aids: [] });
          else changeOf(endpoint, entry.events[i].id, key).state = entry.state;
        }
      }
    }
    for (const row of fresh.values()) ops.push({ kind: 'event', row });
    for (let i = 0; i < ops.length; i += WRITE_CHUNK) this.writeChunk(ops.slice(i, i + WRITE_CHUNK), i + WRITE_CHUNK >= ops.length);
  }

  /** Deletes what is older than the retention window. */
  trim(): void {
    this.db.transaction(() => this.trimOld())();
  }

  private apply(ops: readonly Op[], last: boolean): void {
    const added = { attempts: new Map<string, number>(), events: new Map<string, number>() };
    const bump = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
    for (const op of ops) {
      switch (op.kind) {
        case 'feed':
          this.addToFeed(op.events, op.seq);
          break;
        case 'attempt':
          this.stmt.insertAttempt.run(op.attempt.endpoint, Number(op.attempt.id), JSON.stringify(op.attempt));
          bump(added.attempts, op.attempt.endpoint, 1);
          break;
        case 'change':
          if (op.aids.length === 1 && op.state !== undefined) {
            const aid = op.aids[0];
            this.stmt.countAttemptAndState.run(op.state, aid, aid, aid, op.id, op.endpoint);
            break;
          }
          for (const aid of op.aids) this.stmt.countAttempt.run(aid, aid, aid, op.id, op.endpoint);
          if (op.state !== undefined) this.stmt.setState.run(op.state, op.id, op.endpoint);
          break;
        case 'event': {
          const { row } = op;
          const t = row.event.target;
          // Positional: binding an object's named fields costs more per row than the row's indexes.
          const r = this.stmt.insertEvent.run(
            row.seq,
            row.endpoint,
            row.event.id,
            row.state,
            row.attempts,
            row.aids.join(' '),
            row.event.action,
            t.repository ?? null,
            t.digest ?? null,
            t.tag ?? null,
            'json' in row.event ? row.event.json : storedEventJson(row.event),
          );
          // An upsert that found the row reports a change too; only a new row's rowid is its seq.
          if (Number(r.lastInsertRowid) === row.seq) bump(added.events, row.endpoint, 1);
        }
      }
    }
    for (const endpoint of [...added.attempts.keys(), ...added.events.keys()]) this.known?.add(endpoint);
    for (const [endpoint, n] of added.attempts) this.bound('attempts', endpoint, n);
    for (const [endpoint, n] of added.events) this.bound('events', endpoint, n);
    if (last && Date.now() - this.trimmedAt >= AGE_TRIM_EVERY_MS) this.trimOld();
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
}
