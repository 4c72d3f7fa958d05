import type { Event } from '../model/event';
import { eventTopic } from '../model/topic';

/**
 * The delivery log: what the console shows of each endpoint's past. Two logs in one store:
 *
 * - the **attempt log**: one record per request made to an endpoint (its time, the event
 *   ids it carried, the attempt number, the HTTP status or the error, the latency and the
 *   first KiB of the answer), newest first, bounded per endpoint by count and age;
 * - the **event log**: every event an endpoint accepted, findable for the retention
 *   window by id, repository, digest, tag, action and state, with its attempts;
 *
 * and beside them the **feed**: every event the registry emitted, oldest first, for the
 * pull feed (`GET /events`), with the cursors of its named consumers.
 *
 * A log is kept in the endpoint's store kind (memory, SQLite, Redis); with Redis every
 * replica writes to and reads from the same log. Writes come in batches from a
 * `DeliveryRecorder`, never from the delivery path itself.
 */
export interface DeliveryLog {
  /** A short name for messages: `memory`, `sqlite:/path`, `redis log regnotify`. */
  readonly description: string;
  /**
   * Whether the log writes an event once when its delivery comes in the same write as the
   * event, and writes it and then changes it otherwise (SQLite, Redis): the recorder then
   * leaves events accepted just before a timed write for the next, with their delivery.
   */
  readonly holdsYoungEvents?: boolean;
  /** Applies the entries in order; durable (for SQLite and Redis) when it resolves. */
  write(entries: readonly LogEntry[]): Promise<void>;
  /** One endpoint's attempts, newest first, from before `cursor` (an attempt id) when given. */
  attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>>;
  /** Events matching every given field, newest first, from before `cursor` when given. */
  events(query: EventQuery): Promise<Paged<LoggedEvent>>;
  /** The event with this id in each of these endpoints' logs (one entry per endpoint that has it). */
  event(id: string, endpoints: readonly string[]): Promise<LoggedEvent[]>;
  /** The attempts that carried this event to this endpoint (the latest 20), oldest first. */
  eventAttempts(endpoint: string, eventId: string): Promise<AttemptRecord[]>;
  /** Removes what is older than the retention window (writes also do it, now and then). */
  trim(): Promise<void>;
  /**
   * The pull feed's log, oldest first: up to `limit` events after position `after` (a
   * feed seq; from the oldest retained when absent) whose topic is in `topics` (every
   * topic when absent), reading at most `scan` rows. `last` is the last row read, matched
   * or not, so that the next read goes on from it.
   */
  feedRead(after: number | undefined, limit: number, topics: ReadonlySet<string> | undefined, scan: number): Promise<FeedScan>;
  /** The feed seq of the event with this id, while it is retained. */
  feedSeq(eventId: string): Promise<number | undefined>;
  /** The oldest and newest events the feed retains. */
  feedBounds(): Promise<{ oldest?: FeedMark; newest?: FeedMark }>;
  /**
   * Calls `listener` soon after any process sharing this log adds events to the feed (a
   * hint: readers still look at the log now and then, as one may be missed). Absent where
   * only this process writes, or where the log can only be polled. Returns how to stop.
   */
  watchFeed?(listener: () => void): () => void;
  /** The cursor (an event id) a named feed consumer acknowledged last, if any. */
  consumerCursor(name: string): Promise<string | undefined>;
  /** Saves a named consumer's cursor; `undefined` forgets it. */
  setConsumerCursor(name: string, cursor: string | undefined): Promise<void>;
  /** Checks the store can be used; rejects with StoreOpenError naming it. */
  open?(): Promise<void>;
  close(): Promise<void>;
}

/** How much a log keeps; each bound is per endpoint. */
export interface DeliveryLogLimits {
  /** Most attempts kept per endpoint; 0 keeps none. @default 10000 */
  attempts: number;
  /** Most events kept per endpoint; 0 keeps none. @default 100000 */
  events: number;
  /** How long attempts and events are kept, in ms. @default 86400000 (24h) */
  retentionMs: number;
}

/** One request to an endpoint, as the attempt log keeps it. */
export interface AttemptRecord {
  /** Sorts by time, newest last; a decimal number. Also the cursor of the page after it. */
  id: string;
  /** When the answer (or the failure) came, ISO 8601. */
  time: string;
  endpoint: string;
  eventIds: string[];
  /** 1 for the first request of these events, 2 for the first retry, … */
  attempt: number;
  /** The HTTP status, or null when there was no answer. */
  status: number | null;
  /** Why there was no answer (refused, timeout, …), or null. */
  error: string | null;
  latencyMs: number;
  /** The first KiB of the answer's body, or null when there was none. */
  response: string | null;
  /** A test event sent by an operator: never queued, never in the event log. */
  test: boolean;
}

export type EventState = 'pending' | 'delivered' | 'dead-lettered';
export const EVENT_STATES: readonly EventState[] = ['pending', 'delivered', 'dead-lettered'];

/** One event in one endpoint's event log. */
export interface LoggedEvent {
  /** Sorts by the time the endpoint accepted the event; the cursor of the page after it. */
  seq: string;
  endpoint: string;
  state: EventState;
  /** Requests that carried the event to the endpoint so far. */
  attempts: number;
  event: Event;
}

/** A place in the pull feed's log: an event's feed seq and id. */
export interface FeedMark {
  seq: number;
  id: string;
}

/** One event of the pull feed as a log keeps it: its topic and its JSON, ready to send. */
export interface FeedItem extends FeedMark {
  topic: string;
  /** `JSON.stringify(event)`. */
  body: string;
}

/** What one read of the feed found. */
export interface FeedScan {
  /** The events that matched, oldest first. */
  events: FeedItem[];
  /** The last row read (matched or not); absent when there was none after the position. */
  last?: FeedMark;
}

/**
 * What a recorder hands a log, in order. A `feed` entry adds every event the registry
 * emitted to the pull feed's log: kept apart from the endpoints' event logs, bounded by
 * the same `events` count and retention window. A log gives each such event a seq above
 * every seq it already holds (`seq` is only the lowest it may take), so that readers of a
 * log shared by replicas see events appear in seq order and a cursor never skips one.
 */
export type LogEntry =
  | { kind: 'feed'; events: readonly Event[]; seq: number; at: number }
  | { kind: 'attempt'; attempt: AttemptRecord }
  | {
      kind: 'events';
      endpoint: string;
      /** `pending` (accepted into the queue), `delivered` or `dead-lettered`. */
      state: EventState;
      events: readonly Event[];
      /** A log id (see `LogClock`) for new events: their `seq` is this and the ones after it. */
      seq: number;
      /** When, in ms since the epoch. */
      at: number;
    };

export interface Page {
  /** The `next` of the previous page; absent for the first. */
  cursor?: string;
  /** Most items. */
  limit: number;
}

export interface Paged<T> {
  items: T[];
  /** Where the next page starts, or null when there is none. */
  next: string | null;
}

export interface EventQuery extends Page {
  /** The endpoints whose logs are searched (all that are configured, or the one asked for). */
  endpoints: readonly string[];
  id?: string;
  repository?: string;
  digest?: string;
  tag?: string;
  action?: string;
  state?: EventState;
  /** Accepted at or after this time, ms since the epoch. */
  fromMs?: number;
  /** Accepted before this time, ms since the epoch. */
  toMs?: number;
}

/** A cursor that no page handed out. */
export class BadCursorError extends Error {
  override readonly name = 'BadCursorError';
  constructor(readonly cursor: string) {
    super(`cursor ${JSON.stringify(cursor)} is not one this log handed out; start again without a cursor`);
  }
}

/** Ids are `ms * 4096 + n`: they sort by time and stay exact in a double until the year 2248. */
const ID_SPAN = 4096;

/** The cursor as a number, or a BadCursorError. */
export function parseCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (!/^\d{1,16}$/.test(cursor)) throw new BadCursorError(cursor);
  return Number(cursor);
}

/** The first `limit` items, and the cursor after the last of them when there are more. */
export function pageOf<T>(items: T[], limit: number, cursorOf: (item: T) => string): Paged<T> {
  if (items.length <= limit) return { items, next: null };
  const page = items.slice(0, limit);
  return { items: page, next: cursorOf(page[page.length - 1]) };
}

/** The smallest id of something logged at `ms`: what is older than this is before it. */
export function idAt(ms: number): number {
  return Math.floor(ms) * ID_SPAN;
}

/** The time (ms since the epoch) an id was handed out. */
export function timeOfId(id: number): number {
  return Math.floor(id / ID_SPAN);
}

/**
 * Hands out log ids: increasing in this process, sorting by time across processes. Each
 * process starts at a random point within a millisecond, so that two replicas writing to
 * one Redis in the same millisecond seldom pick the same id.
 */
export class LogClock {
  private last = 0;
  private readonly offset = Math.floor(Math.random() * (ID_SPAN / 2));

  /** The next id; `count` ids from it on are reserved. */
  next(count = 1, now = Date.now()): number {
    const id = Math.max(idAt(now) + this.offset, this.last + 1);
    this.last = id + count - 1;
    return id;
  }
}

/** What a search matches on, besides the endpoint, time and cursor: used by stores that filter in code. */
export function matches(e: LoggedEvent, q: EventQuery): boolean {
  const t = e.event.target;
  return (
    (q.id === undefined || e.event.id === q.id) &&
    (q.repository === undefined || t.repository === q.repository) &&
    (q.digest === undefined || t.digest === q.digest) &&
    (q.tag === undefined || t.tag === q.tag) &&
    (q.action === undefined || e.event.action === q.action) &&
    (q.state === undefined || e.state === q.state)
  );
}

/** A feed event as logs keep it. */
export function feedItem(event: Event, seq: number): FeedItem {
  return { seq, id: event.id, topic: eventTopic(event), body: JSON.stringify(event) };
}

/** Most attempt ids an event's log entry remembers. */
export const ATTEMPTS_PER_EVENT = 20;
