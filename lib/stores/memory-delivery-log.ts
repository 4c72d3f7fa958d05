import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import {
  ATTEMPTS_PER_EVENT,
  feedItem,
  idAt,
  type FeedItem,
  type FeedMark,
  type FeedScan,
  pageOf,
  parseCursor,
  type AttemptRecord,
  type DeliveryLog,
  type DeliveryLogLimits,
  type EventQuery,
  type LogEntry,
  type LoggedEvent,
  type EventState,
  type Page,
  type Paged,
} from './delivery-log';

/** Age trims run at most this often, in ms: a write past it also drops what is too old. */
const AGE_TRIM_EVERY_MS = 1000;

/**
 * What a dropped slot holds until its array is next cut (when the dropped slots are as
 * many as the kept ones): the record it held is let go at once, so that the log keeps
 * what its limits say and not up to twice that.
 */
const DROPPED_ATTEMPT: AttemptRecord = Object.freeze({ id: '0', time: '', endpoint: '', eventIds: [], attempt: 0, status: null, error: null, latencyMs: 0, response: null, test: false });
const DROPPED_FEED_ITEM: FeedItem = Object.freeze({ seq: 0, id: '', topic: '', body: '' });

/** Hint slots of `EndpointLog.find`: where the next attempt and the next state change likely are. */
const ATTEMPT_HINT = 0;
const STATE_HINT = 1;

/**
 * One endpoint's part of the log. Attempts are kept oldest first, as they came (records
 * are kept as given, not copied). Events are kept in columns, oldest first, from `head`
 * on: what the log adds per event is a few array slots, no object of its own, so that
 * recording costs the delivery path little and leaves the collector little to trace.
 *
 * Events are not indexed as they come: a queue delivers in order, so the events an
 * attempt or a state change names are found where the previous one left off (`hints`).
 * The index by id is built up to the newest event when that fails, and before a read. An
 * event logged again (replayed) takes a new slot until then; indexing folds that slot
 * into the first one, so that the event keeps its place and adds up its attempts.
 */
class EndpointLog {
  attempts: AttemptRecord[] = [];
  /** The first attempt kept: those before it are dropped (cut off in bulk, now and then). */
  attemptsHead = 0;
  /** Undefined in a slot dropped, or folded into the first slot of the same event. */
  events: (Event | undefined)[] = [];
  seqs: number[] = [];
  states: EventState[] = [];
  /** When each slot's state last changed, as a count of changes: a fold keeps the latest. */
  changed: number[] = [];
  /** Attempts that carried each event so far. */
  counts: number[] = [];
  /** The ids (as numbers) of the first and latest of those attempts; 0 before the first. */
  firstAttempt: number[] = [];
  lastAttempt: number[] = [];
  /** The first slot kept. */
  head = 0;
  /** Positions handed out before slot 0, which dropped slots left: a position is `base` + slot. */
  base = 0;
  /** The position of each event's first slot, for the slots before `indexed`. */
  readonly byId = new Map<string, number>();
  indexed = 0;
  private changes = 0;
  /** The slot after the last one an attempt, and a state change, named. */
  private readonly hints = [0, 0];

  get attemptCount(): number {
    return this.attempts.length - this.attemptsHead;
  }

  get eventCount(): number {
    return this.events.length - this.head;
  }

  add(event: Event, seq: number): void {
    this.events.push(event);
    this.seqs.push(seq);
    this.states.push('pending');
    this.changed.push(++this.changes);
    this.counts.push(0);
    this.firstAttempt.push(0);
    this.lastAttempt.push(0);
  }

  setState(i: number, state: EventState): void {
    this.states[i] = state;
    this.changed[i] = ++this.changes;
  }

  /** The slot of the event with this id, or -1; looked for first where `hint` left off. */
  find(id: string, hint: number): number {
    let i = this.hints[hint];
    if (i >= this.events.length || this.events[i]?.id !== id) i = this.lookUp(id);
    if (i >= 0) this.hints[hint] = i + 1;
    return i;
  }

  /** The slot of the event with this id by the index, brought up to date; or -1. */
  lookUp(id: string): number {
    this.index();
    const pos = this.byId.get(id);
    return pos === undefined ? -1 : pos - this.base;
  }

  /** Indexes the slots not indexed yet, folding a second slot of an event into its first. */
  index(): void {
    for (let i = Math.max(this.indexed, this.head); i < this.events.length; i++) {
      const event = this.events[i];
      if (!event) continue;
      const pos = this.byId.get(event.id);
      if (pos === undefined) this.byId.set(event.id, this.base + i);
      else this.fold(i, pos - this.base);
    }
    this.indexed = this.events.length;
  }

  private fold(from: number, into: number): void {
    if (this.changed[from] > this.changed[into]) {
      this.states[into] = this.states[from];
      this.changed[into] = this.changed[from];
    }
    if (this.counts[from] > 0) {
      if (this.counts[into] === 0) this.firstAttempt[into] = this.firstAttempt[from];
      this.lastAttempt[into] = Math.max(this.lastAttempt[into], this.lastAttempt[from]);
      this.counts[into] += this.counts[from];
    }
    this.events[from] = undefined;
  }

  /** Drops the `n` oldest slots. */
  dropEvents(n: number): void {
    for (let i = this.head; i < this.head + n; i++) {
      const event = this.events[i];
      if (event && i < this.indexed && this.byId.get(event.id) === this.base + i) this.byId.delete(event.id);
      this.events[i] = undefined;
    }
    this.head += n;
    // The columns are cut once the dropped slots are as many as the kept ones.
    if (this.head >= 1024 && this.head * 2 >= this.events.length) {
      const cut = this.head;
      for (const column of [this.events, this.seqs, this.states, this.changed, this.counts, this.firstAttempt, this.lastAttempt]) column.splice(0, cut);
      this.base += cut;
      this.head = 0;
      this.indexed = Math.max(0, this.indexed - cut);
      for (let h = 0; h < this.hints.length; h++) this.hints[h] = Math.max(0, this.hints[h] - cut);
    }
  }

  dropAttempts(n: number): void {
    this.attempts.fill(DROPPED_ATTEMPT, this.attemptsHead, this.attemptsHead + n);
    this.attemptsHead += n;
    if (this.attemptsHead >= 1024 && this.attemptsHead * 2 >= this.attempts.length) {
      this.attempts.splice(0, this.attemptsHead);
      this.attemptsHead = 0;
    }
  }

  /** The event in slot `i` as the log shows it. */
  shown(i: number, endpoint: string): LoggedEvent {
    return { seq: String(this.seqs[i]), endpoint, state: this.states[i], attempts: this.counts[i], event: this.events[i]! };
  }

  /** Whether the event in slot `i` matches the search's fields. */
  matches(i: number, q: EventQuery): boolean {
    const e = this.events[i];
    if (!e) return false;
    const t = e.target;
    return (
      (q.id === undefined || e.id === q.id) &&
      (q.repository === undefined || t.repository === q.repository) &&
      (q.digest === undefined || t.digest === q.digest) &&
      (q.tag === undefined || t.tag === q.tag) &&
      (q.action === undefined || e.action === q.action) &&
      (q.state === undefined || this.states[i] === q.state)
    );
  }

  /** The index of the first attempt kept whose id is at least `id`. */
  attemptAtOrAfter(id: number): number {
    let lo = this.attemptsHead;
    let hi = this.attempts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Number(this.attempts[mid].id) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The delivery log in the heap, lost when the process ends; the companion of `MemoryStore`. */
export class MemoryDeliveryLog implements DeliveryLog {
  readonly description = 'memory';
  private readonly limits: DeliveryLogLimits;
  private readonly byEndpoint = new Map<string, EndpointLog>();
  /** The pull feed's events, by seq, from `feedHead` on; and their seqs by id. */
  private feed: FeedItem[] = [];
  private feedHead = 0;
  private readonly feedIds = new Map<string, number>();
  private readonly consumers = new Map<string, string>();
  /** When the last age trim ran, ms since the epoch. */
  private trimmedAt = 0;

  constructor(limits: Partial<DeliveryLogLimits> = {}) {
    this.limits = {
      attempts: limits.attempts ?? DEFAULTS.log.attempts,
      events: limits.events ?? DEFAULTS.log.events,
      retentionMs: limits.retentionMs ?? DEFAULTS.log.retentionMs,
    };
  }

  private of(endpoint: string): EndpointLog {
    let log = this.byEndpoint.get(endpoint);
    if (!log) this.byEndpoint.set(endpoint, (log = new EndpointLog()));
    return log;
  }

  async write(entries: readonly LogEntry[]): Promise<void> {
    for (const entry of entries) {
      if (entry.kind === 'feed') this.addToFeed(entry.events, entry.seq);
      else if (entry.kind === 'attempt') this.addAttempt(entry.attempt);
      else if (this.limits.events > 0) this.changeState(this.of(entry.endpoint), entry.state, entry.events, entry.seq);
    }
    // What is older than the retention window goes at most once a second, and before reads.
    const now = Date.now();
    if (now - this.trimmedAt >= AGE_TRIM_EVERY_MS) this.trimOld(now);
  }

  private addAttempt(a: AttemptRecord): void {
    const log = this.of(a.endpoint);
    if (this.limits.attempts > 0) {
      log.attempts.push(a);
      if (log.attemptCount > this.limits.attempts) log.dropAttempts(log.attemptCount - this.limits.attempts);
    }
    if (a.test || log.eventCount === 0) return;
    const id = Number(a.id);
    for (const eventId of a.eventIds) {
      const i = log.find(eventId, ATTEMPT_HINT);
      if (i < 0) continue;
      if (log.counts[i]++ === 0) log.firstAttempt[i] = id;
      log.lastAttempt[i] = id;
    }
  }

  private changeState(log: EndpointLog, state: EventState, events: readonly Event[], seq: number): void {
    if (state === 'pending') {
      // A replayed event is folded into its first slot when the log is next indexed.
      for (let k = 0; k < events.length; k++) log.add(events[k], seq + k);
    } else {
      for (const event of events) {
        const i = log.find(event.id, STATE_HINT);
        if (i >= 0) log.setState(i, state);
      }
    }
    if (log.eventCount > this.limits.events) log.dropEvents(log.eventCount - this.limits.events);
  }

  async attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>> {
    const before = parseCursor(page.cursor) ?? Infinity;
    const cutoff = this.cutoff();
    const log = this.byEndpoint.get(endpoint);
    if (!log) return { items: [], next: null };
    const items: AttemptRecord[] = [];
    for (let i = log.attempts.length - 1; i >= log.attemptsHead && items.length <= page.limit; i--) {
      const id = Number(log.attempts[i].id);
      if (id < cutoff) break;
      if (id < before) items.push(log.attempts[i]);
    }
    return pageOf(items, page.limit, (a) => a.id);
  }

  async events(q: EventQuery): Promise<Paged<LoggedEvent>> {
    const before = parseCursor(q.cursor) ?? Infinity;
    const from = Math.max(this.cutoff(), q.fromMs === undefined ? 0 : idAt(q.fromMs));
    const to = q.toMs === undefined ? Infinity : idAt(q.toMs);
    const found: LoggedEvent[] = [];
    const keep = q.limit + 1;
    for (const endpoint of q.endpoints) {
      const log = this.byEndpoint.get(endpoint);
      if (!log) continue;
      log.index();
      // Newest first: the first `keep` matches of each endpoint are the most that can be on the page.
      let n = 0;
      for (let i = log.events.length - 1; i >= log.head && n < keep; i--) {
        const seq = log.seqs[i];
        if (seq < before && seq >= from && seq < to && log.matches(i, q)) {
          found.push(log.shown(i, endpoint));
          n++;
        }
      }
    }
    found.sort((a, b) => Number(b.seq) - Number(a.seq));
    return pageOf(found.slice(0, keep), q.limit, (e) => e.seq);
  }

  async event(id: string, endpoints: readonly string[]): Promise<LoggedEvent[]> {
    const cutoff = this.cutoff();
    const found: LoggedEvent[] = [];
    for (const endpoint of endpoints) {
      const log = this.byEndpoint.get(endpoint);
      const i = log ? log.lookUp(id) : -1;
      if (i >= 0 && log!.seqs[i] >= cutoff) found.push(log!.shown(i, endpoint));
    }
    return found;
  }

  async eventAttempts(endpoint: string, eventId: string): Promise<AttemptRecord[]> {
    const log = this.byEndpoint.get(endpoint);
    const i = log ? log.lookUp(eventId) : -1;
    if (!log || i < 0 || log.counts[i] === 0) return [];
    // The attempts that carried the event are among those from its first to its latest.
    const last = log.lastAttempt[i];
    const found: AttemptRecord[] = [];
    for (let k = log.attemptAtOrAfter(log.firstAttempt[i]); k < log.attempts.length; k++) {
      const a = log.attempts[k];
      if (Number(a.id) > last) break;
      if (!a.test && a.eventIds.includes(eventId)) found.push(a);
    }
    return found.slice(-ATTEMPTS_PER_EVENT);
  }

  async trim(): Promise<void> {
    this.trimOld(Date.now());
  }

  async close(): Promise<void> {}

  async feedRead(after: number | undefined, limit: number, topics: ReadonlySet<string> | undefined, scan: number): Promise<FeedScan> {
    const from = Math.max(after === undefined ? -Infinity : after + 1, this.cutoff());
    // The first index at or past `from`: the feed is sorted by seq.
    let lo = this.feedHead;
    let hi = this.feed.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.feed[mid].seq < from) lo = mid + 1;
      else hi = mid;
    }
    const events: FeedItem[] = [];
    let last: FeedMark | undefined;
    for (let i = lo; i < this.feed.length && i - lo < scan && events.length < limit; i++) {
      const item = this.feed[i];
      last = { seq: item.seq, id: item.id };
      if (!topics || topics.has(item.topic)) events.push(item);
    }
    return { events, last };
  }

  async feedSeq(eventId: string): Promise<number | undefined> {
    const seq = this.feedIds.get(eventId);
    return seq !== undefined && seq >= this.cutoff() ? seq : undefined;
  }

  async feedBounds(): Promise<{ oldest?: FeedMark; newest?: FeedMark }> {
    this.trimOld(Date.now());
    const mark = (item: FeedItem | undefined) => item && { seq: item.seq, id: item.id };
    return { oldest: mark(this.feed[this.feedHead]), newest: mark(this.feed[this.feed.length - 1]) };
  }

  async consumerCursor(name: string): Promise<string | undefined> {
    return this.consumers.get(name);
  }

  async setConsumerCursor(name: string, cursor: string | undefined): Promise<void> {
    if (cursor === undefined) this.consumers.delete(name);
    else this.consumers.set(name, cursor);
  }

  private addToFeed(events: readonly Event[], lowest: number): void {
    if (this.limits.events === 0) return;
    let seq = Math.max(lowest, (this.feed[this.feed.length - 1]?.seq ?? 0) + 1);
    for (const event of events) {
      if (this.feedIds.has(event.id)) continue;
      this.feed.push(lazyFeedItem(event, seq));
      this.feedIds.set(event.id, seq++);
    }
    const over = this.feed.length - this.feedHead - this.limits.events;
    if (over > 0) this.dropFeed(over);
  }

  private dropFeed(n: number): void {
    for (let i = this.feedHead; i < this.feedHead + n; i++) {
      this.feedIds.delete(this.feed[i].id);
      this.feed[i] = DROPPED_FEED_ITEM;
    }
    this.feedHead += n;
    if (this.feedHead >= 1024 && this.feedHead * 2 >= this.feed.length) {
      this.feed.splice(0, this.feedHead);
      this.feedHead = 0;
    }
  }

  private cutoff(): number {
    return idAt(Date.now() - this.limits.retentionMs);
  }

  private trimOld(now: number): void {
    this.trimmedAt = now;
    const cutoff = idAt(now - this.limits.retentionMs);
    for (const log of this.byEndpoint.values()) {
      let n = log.attemptsHead;
      while (n < log.attempts.length && Number(log.attempts[n].id) < cutoff) n++;
      if (n > log.attemptsHead) log.dropAttempts(n - log.attemptsHead);
      let e = log.head;
      while (e < log.events.length && log.seqs[e] < cutoff) e++;
      if (e > log.head) log.dropEvents(e - log.head);
    }
    let old = this.feedHead;
    while (old < this.feed.length && this.feed[old].seq < cutoff) old++;
    if (old > this.feedHead) this.dropFeed(old - this.feedHead);
  }
}

/** A feed item whose topic and JSON are worked out when first read, not when the event is logged. */
function lazyFeedItem(event: Event, seq: number): FeedItem {
  let item: FeedItem | undefined;
  const full = () => (item ??= feedItem(event, seq));
  return {
    seq,
    id: event.id,
    get topic() {
      return full().topic;
    },
    get body() {
      return full().body;
    },
  };
}
