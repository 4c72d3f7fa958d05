import { DEFAULTS } from '../config/defaults';
import type { Sink } from '../deliver/sink';
import type { Event } from '../model/event';
import { timeOfId, type FeedItem } from '../stores/delivery-log';
import type { DeliveryRecorder } from './delivery-recorder';

export interface EventFeedOptions {
  /**
   * Whether other processes may write the log (SQLite, Redis): while a reader waits, the
   * log is looked at every `pollMs` for their events. @default true
   */
  poll?: boolean;
  /** @default DEFAULTS.feed.pollMs (100ms) */
  pollMs?: number;
  /** Most rows one read looks at for events of the asked topics. @default DEFAULTS.feed.scanRows (5000) */
  scanRows?: number;
  /** The retention window of the log, in ms: an unknown cursor older than it is gone. @default DEFAULTS.log.retentionMs */
  retentionMs?: number;
}

/** A feed request refused, with the status to answer and the JSON body's fields. */
export class FeedError extends Error {
  override readonly name = 'FeedError';
  constructor(
    readonly status: number,
    message: string,
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Where a reader is: after the event `cursor` (feed seq `seq`), or before the oldest when both are absent. */
export interface FeedPosition {
  seq?: number;
  cursor?: string;
}

/** One answer of the feed: the events that matched, and the cursor to ask for the next. */
export interface FeedAnswer {
  events: FeedItem[];
  /** The id of the last event looked at (matched or not); absent when the feed had none to look at. */
  cursor?: string;
  /** The position after this answer: where the next read goes on from. */
  position: FeedPosition;
}

/** How a reader asks for events. */
export interface FeedQuery {
  position: FeedPosition;
  limit: number;
  /** Topics to keep; every topic when absent. */
  topics?: ReadonlySet<string>;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The time (ms since the epoch) in a UUIDv7, or undefined for another kind of string. */
export function uuidV7Time(id: string): number | undefined {
  return UUID_V7.test(id) ? parseInt(id.slice(0, 8) + id.slice(9, 13), 16) : undefined;
}

/**
 * The pull feed: every event the registry emitted, kept in the delivery log (its own part
 * of it, bounded by `log.events` and `log.retention`), read oldest first by cursor (the
 * id of the last event a reader was given or skipped). Named consumers keep their cursor
 * in the log's store, so a restarted reader, or one that moved to another replica,
 * continues where it stopped. Readers that found nothing wait for this process's next
 * write, for word of another's where the log gives it (Redis), and, when others may
 * write the log, look at it every `pollMs`.
 */
export class EventFeed {
  private readonly pollMs: number;
  private readonly scanRows: number;
  private readonly retentionMs: number;
  /** Bumped at every write (ours, or another process's seen by the poll): a waiter that saw an older one reads again. */
  private generation = 0;
  /** Each waiter's wake-up, with the seq it has read up to. */
  private readonly waiters = new Map<() => void, number | undefined>();
  private poller?: NodeJS.Timeout;
  private readonly stopListening: () => void;
  private closed = false;

  constructor(
    readonly recorder: DeliveryRecorder,
    private readonly options: EventFeedOptions = {},
  ) {
    this.pollMs = options.pollMs ?? DEFAULTS.feed.pollMs;
    this.scanRows = options.scanRows ?? DEFAULTS.feed.scanRows;
    this.retentionMs = options.retentionMs ?? DEFAULTS.log.retentionMs;
    const stopLocal = recorder.onFeedWritten(() => this.changed());
    // Other processes' writes (Redis replicas) are heard of at once where the log can tell.
    const stopShared = recorder.log.watchFeed?.(() => this.changed());
    this.stopListening = () => {
      stopLocal();
      stopShared?.();
    };
  }

  /** Readers waiting for events now (long polls and streams): none once every one has gone. */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Adds events the registry emitted; written at once when a reader is waiting for them. */
  record(events: readonly Event[]): void {
    if (!this.closed) this.recorder.feed(events, this.waiters.size > 0);
  }

  /** A sink that records every event written to it in the feed, then hands it on to `next`. */
  recordingSink(next: Sink): Sink {
    return {
      write: (events) => {
        this.record(events);
        return next.write(events);
      },
      close: () => next.close(),
      prepare: (events) => next.prepare?.(events),
    };
  }

  /**
   * Where a reader starts: after `cursor` when given (`''` is before the oldest event),
   * else after the consumer's saved cursor, else before the oldest. A consumer's cursor is
   * saved from the request's (the request acknowledges what came before it); an empty one
   * forgets it. Throws FeedError 410 for a cursor older than the feed keeps, 400 for one
   * that is no event of the feed.
   */
  async position(cursor: string | undefined, consumer: string | undefined): Promise<FeedPosition> {
    const log = this.recorder.log;
    if (cursor === undefined && consumer !== undefined) {
      const saved = await log.consumerCursor(consumer);
      return saved === undefined ? {} : this.locate(saved, `consumer ${JSON.stringify(consumer)}'s cursor`);
    }
    const position = cursor === undefined || cursor === '' ? {} : await this.locate(cursor, 'cursor');
    if (consumer !== undefined) await log.setConsumerCursor(consumer, cursor === '' ? undefined : cursor);
    return position;
  }

  private async locate(cursor: string, what: string): Promise<FeedPosition> {
    await this.recorder.flush();
    const seq = await this.recorder.log.feedSeq(cursor);
    if (seq !== undefined) return { seq, cursor };
    const time = uuidV7Time(cursor);
    if (time === undefined) throw new FeedError(400, `${what} ${JSON.stringify(cursor)} is not an event id (a UUIDv7) of this feed`);
    const { oldest } = await this.recorder.log.feedBounds();
    const keptFrom = oldest ? timeOfId(oldest.seq) : Date.now() - this.retentionMs;
    // An id's time is when the event was made, before it was logged: one not after the
    // oldest logged event's time (to the millisecond) is an event that has left the log.
    if (time <= keptFrom) {
      throw new FeedError(410, `${what} ${cursor} is older than the oldest event the feed keeps; read on from the oldest (cursor=) or after it (cursor=${oldest?.id ?? ''})`, {
        oldest: oldest?.id ?? null,
      });
    }
    throw new FeedError(400, `${what} ${JSON.stringify(cursor)} is no event of this feed`);
  }

  /**
   * Reads the events after `position`, waiting up to `waitMs` for some when there are
   * none (a long poll); ends early, with what it has, when `signal` aborts or the feed
   * closes. Reads past rows of other topics as it goes, so the cursor it answers moves on
   * even when no event matched.
   */
  async read(query: FeedQuery, waitMs: number, signal?: AbortSignal): Promise<FeedAnswer> {
    const deadline = performance.now() + waitMs;
    let { seq, cursor } = query.position;
    for (;;) {
      const generation = this.generation;
      await this.recorder.flush();
      const scan = await this.recorder.log.feedRead(seq, query.limit, query.topics, this.scanRows);
      if (scan.last) ({ seq, id: cursor } = scan.last);
      const left = deadline - performance.now();
      if (scan.events.length > 0 || left <= 0 || signal?.aborted || this.closed) return { events: scan.events, cursor, position: { seq, cursor } };
      // Rows of other topics were read past: the end may be further on.
      if (scan.last) continue;
      await this.changeAfter(generation, seq, left, signal);
    }
  }

  /**
   * Resolves when the feed may have events after `seq` that a read begun at `generation`
   * did not see, after `ms`, or when `signal` aborts.
   */
  changeAfter(generation: number, seq: number | undefined, ms: number, signal?: AbortSignal): Promise<void> {
    if (generation !== this.generation || this.closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.stopPolling();
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.set(done, seq);
      this.startPolling();
    });
  }

  /** The current generation, for `changeAfter`. */
  get version(): number {
    return this.generation;
  }

  /** Wakes every waiter: each answers with what it has. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    this.changed();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private changed(): void {
    this.generation++;
    for (const wake of [...this.waiters.keys()]) wake();
  }

  /** Looks at the log for other processes' writes while someone waits. */
  private startPolling(): void {
    if (this.poller || this.options.poll === false) return;
    this.poller = setInterval(() => {
      this.recorder.log.feedBounds().then(
        ({ newest }) => {
          if (!newest) return;
          let woke = false;
          for (const [wake, seq] of [...this.waiters]) {
            if (seq === undefined || newest.seq > seq) (woke = true), wake();
          }
          if (woke) this.generation++;
        },
        () => undefined, // the store is down: the waiters time out and their readers try again
      );
    }, this.pollMs).unref();
  }

  private stopPolling(): void {
    clearInterval(this.poller);
    this.poller = undefined;
  }
}
