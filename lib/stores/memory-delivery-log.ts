import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import {
  ATTEMPTS_PER_EVENT,
  feedItem,
  idAt,
  matches,
  type FeedItem,
  type FeedMark,
  type FeedScan,
  parseCursor,
  type AttemptRecord,
  type DeliveryLog,
  type DeliveryLogLimits,
  type EventQuery,
  type LogEntry,
  type LoggedEvent,
  type Page,
  type Paged,
} from './delivery-log';

interface MemoryEvent extends LoggedEvent {
  seqNum: number;
  attemptIds: string[];
}

/** One endpoint's part of the log: attempts oldest first, events by id in the order they came. */
interface EndpointLog {
  attempts: AttemptRecord[];
  events: Map<string, MemoryEvent>;
}

/** The delivery log in the heap, lost when the process ends; the companion of `MemoryStore`. */
export class MemoryDeliveryLog implements DeliveryLog {
  readonly description = 'memory';
  private readonly limits: DeliveryLogLimits;
  private readonly byEndpoint = new Map<string, EndpointLog>();
  /** The pull feed's events, by seq; and their seqs by id. */
  private feed: FeedItem[] = [];
  private readonly feedIds = new Map<string, number>();
  private readonly consumers = new Map<string, string>();

  constructor(limits: Partial<DeliveryLogLimits> = {}) {
    this.limits = {
      attempts: limits.attempts ?? DEFAULTS.log.attempts,
      events: limits.events ?? DEFAULTS.log.events,
      retentionMs: limits.retentionMs ?? DEFAULTS.log.retentionMs,
    };
  }

  private of(endpoint: string): EndpointLog {
    let log = this.byEndpoint.get(endpoint);
    if (!log) this.byEndpoint.set(endpoint, (log = { attempts: [], events: new Map() }));
    return log;
  }

  async write(entries: readonly LogEntry[]): Promise<void> {
    for (const entry of entries) {
      if (entry.kind === 'feed') {
        this.addToFeed(entry.events, entry.seq);
        continue;
      }
      if (entry.kind === 'attempt') {
        const a = entry.attempt;
        const log = this.of(a.endpoint);
        if (this.limits.attempts > 0) {
          log.attempts.push(a);
          if (log.attempts.length > this.limits.attempts) log.attempts.splice(0, log.attempts.length - this.limits.attempts);
        }
        if (a.test) continue;
        for (const id of a.eventIds) {
          const e = log.events.get(id);
          if (!e) continue;
          e.attempts++;
          e.attemptIds.push(a.id);
          if (e.attemptIds.length > ATTEMPTS_PER_EVENT) e.attemptIds.shift();
        }
        continue;
      }
      if (this.limits.events === 0) continue;
      const log = this.of(entry.endpoint);
      entry.events.forEach((event, i) => {
        const known = log.events.get(event.id);
        if (known) {
          known.state = entry.state;
        } else if (entry.state === 'pending') {
          const seqNum = entry.seq + i;
          log.events.set(event.id, { seq: String(seqNum), seqNum, endpoint: entry.endpoint, state: 'pending', attempts: 0, event, attemptIds: [] });
        }
      });
      // A Map iterates in insertion order: the first keys are the oldest.
      for (const id of log.events.keys()) {
        if (log.events.size <= this.limits.events) break;
        log.events.delete(id);
      }
    }
    this.trimOld();
  }

  async attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>> {
    const before = parseCursor(page.cursor) ?? Infinity;
    const cutoff = this.cutoff();
    const all = this.byEndpoint.get(endpoint)?.attempts ?? [];
    const items: AttemptRecord[] = [];
    for (let i = all.length - 1; i >= 0 && items.length <= page.limit; i--) {
      const id = Number(all[i].id);
      if (id < cutoff) break;
      if (id < before) items.push(all[i]);
    }
    return pageOf(items, page.limit, (a) => a.id);
  }

  async events(q: EventQuery): Promise<Paged<LoggedEvent>> {
    const before = parseCursor(q.cursor) ?? Infinity;
    const from = Math.max(this.cutoff(), q.fromMs === undefined ? 0 : idAt(q.fromMs));
    const to = q.toMs === undefined ? Infinity : idAt(q.toMs);
    const found: MemoryEvent[] = [];
    const keep = q.limit + 1;
    for (const endpoint of q.endpoints) {
      // Oldest first: of each endpoint's matches only the last `keep` can be on the page.
      const mine: MemoryEvent[] = [];
      for (const e of this.byEndpoint.get(endpoint)?.events.values() ?? []) {
        if (e.seqNum < before && e.seqNum >= from && e.seqNum < to && matches(e, q)) {
          mine.push(e);
          if (mine.length >= 2 * keep) mine.splice(0, mine.length - keep);
        }
      }
      found.push(...mine.slice(-keep));
    }
    found.sort((a, b) => b.seqNum - a.seqNum);
    return pageOf(found.slice(0, q.limit + 1).map(shown), q.limit, (e) => e.seq);
  }

  async event(id: string, endpoints: readonly string[]): Promise<LoggedEvent[]> {
    const cutoff = this.cutoff();
    return endpoints
      .map((name) => this.byEndpoint.get(name)?.events.get(id))
      .filter((e): e is MemoryEvent => e !== undefined && e.seqNum >= cutoff)
      .map(shown);
  }

  async eventAttempts(endpoint: string, eventId: string): Promise<AttemptRecord[]> {
    const log = this.byEndpoint.get(endpoint);
    const ids = new Set(log?.events.get(eventId)?.attemptIds ?? []);
    return (log?.attempts ?? []).filter((a) => ids.has(a.id));
  }

  async trim(): Promise<void> {
    this.trimOld();
  }

  async close(): Promise<void> {}

  async feedRead(after: number | undefined, limit: number, topics: ReadonlySet<string> | undefined, scan: number): Promise<FeedScan> {
    const from = Math.max(after === undefined ? -Infinity : after + 1, this.cutoff());
    // The first index at or past `from`: the feed is sorted by seq.
    let lo = 0;
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
    this.trimOld();
    const mark = (item: FeedItem | undefined) => item && { seq: item.seq, id: item.id };
    return { oldest: mark(this.feed[0]), newest: mark(this.feed[this.feed.length - 1]) };
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
      this.feed.push(feedItem(event, seq));
      this.feedIds.set(event.id, seq++);
    }
    if (this.feed.length > this.limits.events) this.dropFeed(this.feed.length - this.limits.events);
  }

  private dropFeed(n: number): void {
    for (const item of this.feed.splice(0, n)) this.feedIds.delete(item.id);
  }

  private cutoff(): number {
    return idAt(Date.now() - this.limits.retentionMs);
  }

  private trimOld(): void {
    const cutoff = this.cutoff();
    for (const log of this.byEndpoint.values()) {
      let n = 0;
      while (n < log.attempts.length && Number(log.attempts[n].id) < cutoff) n++;
      if (n > 0) log.attempts.splice(0, n);
      for (const [id, e] of log.events) {
        if (e.seqNum >= cutoff) break;
        log.events.delete(id);
      }
    }
    let old = 0;
    while (old < this.feed.length && this.feed[old].seq < cutoff) old++;
    if (old > 0) this.dropFeed(old);
  }
}

function shown(e: MemoryEvent): LoggedEvent {
  return { seq: e.seq, endpoint: e.endpoint, state: e.state, attempts: e.attempts, event: e.event };
}

/** The first `limit` items, and the cursor after the last of them when there are more. */
export function pageOf<T>(items: T[], limit: number, cursorOf: (item: T) => string): Paged<T> {
  if (items.length <= limit) return { items, next: null };
  const page = items.slice(0, limit);
  return { items: page, next: cursorOf(page[page.length - 1]) };
}
