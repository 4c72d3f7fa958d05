import { DEFAULTS } from '../config/defaults';
import {
  ATTEMPTS_PER_EVENT,
  idAt,
  matches,
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
