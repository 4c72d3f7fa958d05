import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import { encodeEnvelope } from '../codec/envelope';
import { ClosedSinkError, sleep, type Sink } from './sink';
import { StoreFullError, type QueueStore, type StoredEvent } from '../stores/queue-store';
import type { DeadLetterStore } from '../stores/dead-letter-store';
import { MemoryStore } from '../stores/memory-store';

/** What a Queue reports; the stats code implements these. */
export interface QueueHooks {
  /** Events were accepted into the store. */
  ingress?(events: readonly Event[]): void;
  /** Events left the store after the sink below accepted them. */
  egress?(events: readonly Event[]): void;
  /** Events were refused (store full), or given up on by the sink below with no dead-letter store. */
  dropped?(events: readonly Event[], reason: Error): void;
  /** Events the sink below gave up on went to the dead-letter store. */
  deadLettered?(events: readonly Event[], reason: Error): void;
}

export interface QueueOptions {
  /** Where pending events live. @default new MemoryStore() */
  store?: QueueStore;
  /** Where events the sink below gives up on go (to be listed and replayed). @default none: they are dropped */
  deadLetters?: DeadLetterStore;
  /**
   * Most events handed to the sink below in one write (one envelope). The queue writes
   * what is pending: one event alone when the endpoint is idle, and what piled up behind
   * a write in flight together, up to this many. 1 is strictly one event per write.
   * @default 100
   */
  maxEvents?: number;
  /**
   * Most bytes of body in one write, as `measure` counts them; a single event larger
   * than this is written alone. 0 is no limit. @default 262144 (256 KiB)
   */
  maxBytes?: number;
  /**
   * The size in bytes of the body the sink below makes of these events, for `maxBytes`.
   * Asked only about writes of more than one event, with the very array that is then
   * written, so an encoder can keep the body it made for the write.
   * @default the UTF-8 length of Distribution's v1 envelope of them
   */
  measure?(events: readonly Event[]): number;
  /**
   * Most events read from the store at once, then written `maxEvents` at a time: fewer
   * round trips to a durable store, and the next write prepared while one is in flight.
   * @default 100, or twice maxEvents when larger
   */
  prefetch?: number;
  /**
   * With `maxEvents` > 1, while events keep coming: after a write that was not full, the
   * next take waits until this long (ms) after that write started, so that what arrives
   * meanwhile goes in one write. An event after a quiet spell goes out at once; a full
   * write (a backlog) never waits. 0 never waits. @default 10
   */
  lingerMs?: number;
  /**
   * On close, how long to keep delivering what is pending before leaving it in the
   * store, in ms. @default 2000 (2s)
   */
  drainTimeoutMs?: number;
  hooks?: QueueHooks;
  /** Called when the sink below fails in a way the queue cannot retry. */
  onError?(err: Error): void;
  /**
   * Failures after which delivery stops for good (an endpoint that is gone): the events
   * stay in the store and `onHalt` is told.
   */
  isFatal?(err: Error): boolean;
  onHalt?(err: Error): void;
}

/** One write: the stored entries (to acknowledge) and their events (to send). */
interface Chunk {
  entries: StoredEvent[];
  events: Event[];
}

/**
 * Decouples writers from delivery: `write` resolves once the events are in the store,
 * and one loop hands them, oldest first, to the sink below. Per-queue order is kept
 * because the loop waits for each write below before taking the next events.
 */
export class Queue implements Sink {
  readonly store: QueueStore;
  private readonly options: Required<Pick<QueueOptions, 'maxEvents' | 'maxBytes' | 'lingerMs' | 'drainTimeoutMs' | 'prefetch'>>;
  private readonly measure: (events: readonly Event[]) => number;
  /** When the last take that was not full started its first write (performance.now()); undefined after a full one. */
  private partialWriteAt?: number;
  /** Body bytes per event of the last write measured: where the next write's size starts. */
  private bytesPerEvent = 0;
  private readonly hooks: QueueHooks;
  private readonly stop = new AbortController();
  private readonly loop: Promise<void>;
  private closing = false;
  private closed?: Promise<void>;

  constructor(
    private readonly dst: Sink,
    private readonly opts: QueueOptions = {},
  ) {
    this.store = opts.store ?? new MemoryStore();
    const maxEvents = opts.maxEvents ?? DEFAULTS.endpoint.maxEvents;
    this.options = {
      maxEvents,
      maxBytes: opts.maxBytes ?? DEFAULTS.endpoint.maxBytes,
      prefetch: Math.max(maxEvents, opts.prefetch ?? Math.max(DEFAULTS.queue.prefetch, 2 * maxEvents)),
      lingerMs: opts.lingerMs ?? DEFAULTS.endpoint.lingerMs,
      drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULTS.queue.drainTimeoutMs,
    };
    this.measure = opts.measure ?? ((events) => Buffer.byteLength(encodeEnvelope(events)));
    this.hooks = opts.hooks ?? {};
    this.loop = this.run();
  }

  /** Commits events to the store; rejects with `StoreFullError` when the store is full. */
  async write(events: readonly Event[]): Promise<void> {
    if (this.closing) throw new ClosedSinkError('queue');
    if (events.length === 0) return;
    try {
      await this.store.append(events);
    } catch (err) {
      if (err instanceof StoreFullError) this.hooks.dropped?.(events, err);
      throw err;
    }
    this.hooks.ingress?.(events);
  }

  /** Events accepted and not yet delivered. */
  pending(): Promise<number> {
    return this.store.pending();
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    // Keep delivering for a while, then cancel whatever wait or retry is under way.
    const deadline = setTimeout(() => this.stop.abort(), this.options.drainTimeoutMs);
    const drained = this.waitDrained();
    await Promise.race([drained, this.loop]);
    clearTimeout(deadline);
    this.stop.abort();
    // Closing the sink below cancels a write still in flight (a retry backoff, say);
    // its events stay unacknowledged in the store.
    await this.dst.close();
    await this.loop;
    await this.store.close();
    await this.opts.deadLetters?.close();
  }

  /**
   * The sink below gave up on these events: dead-letter them when there is a store for it.
   * Resolves false when the dead-letter store could not take them: they must then stay
   * in the queue, unacknowledged, to be tried again.
   */
  private async giveUp(events: Event[], err: Error): Promise<boolean> {
    this.opts.onError?.(err);
    if (!this.opts.deadLetters) {
      this.hooks.dropped?.(events, err);
      return true;
    }
    try {
      await this.opts.deadLetters.add(events, err.message);
      this.hooks.deadLettered?.(events, err);
      return true;
    } catch (dlqErr) {
      this.opts.onError?.(new Error(`${(dlqErr as Error).message}; the events stay in the queue and are tried again`, { cause: dlqErr }));
      return false;
    }
  }

  private async waitDrained(): Promise<void> {
    while (!this.stop.signal.aborted && (await this.store.pending()) > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    const { prefetch } = this.options;
    while (!signal.aborted) {
      let batch: StoredEvent[];
      try {
        const linger = this.lingerLeft();
        if (linger > 0) await this.pause(linger);
        batch = await this.store.take(prefetch, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.opts.onError?.(err as Error);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (batch.length === 0) {
        if (this.closing && (await this.store.pending()) === 0) return;
        continue;
      }
      if (!(await this.deliver(batch, signal))) return;
    }
  }

  /**
   * How long the next take waits for events to gather: until `lingerMs` after the start
   * of the last write, when that write was not full (events are trickling in). Nothing
   * after a full write (a backlog), when closing, or past that time (a quiet spell: the
   * next event goes out at once).
   */
  private lingerLeft(): number {
    if (this.partialWriteAt === undefined || this.closing) return 0;
    return this.partialWriteAt + this.options.lingerMs - performance.now();
  }

  /** Waits `ms`, or less when delivery stops. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, this.stop.signal, 'queue').catch(() => undefined);
  }

  /**
   * The next write, from `from` in what one take returned: up to `maxEvents` events, and
   * as many of them as make a body of at most `maxBytes` (at least one). It starts from
   * the count the last measured body suggests and shrinks until the body fits, so a
   * steady stream costs one measure per write.
   */
  private chunkAt(batch: StoredEvent[], from: number): Chunk {
    const { maxEvents, maxBytes } = this.options;
    let n = Math.min(maxEvents, batch.length - from);
    // Never below two from the estimate: a measure of these events corrects it.
    if (maxBytes > 0 && n > 2 && this.bytesPerEvent > 0) n = Math.max(2, Math.min(n, Math.floor(maxBytes / this.bytesPerEvent)));
    for (;;) {
      const entries = batch.slice(from, from + n);
      const events = entries.map((b) => b.event);
      if (maxBytes <= 0 || n === 1) return { entries, events };
      let size: number;
      try {
        size = this.measure(events);
      } catch {
        return { entries, events }; // the write will fail the same way, and say why
      }
      this.bytesPerEvent = size / n;
      if (size <= maxBytes) return { entries, events };
      n = Math.max(1, Math.min(n - 1, Math.floor((n * maxBytes) / size)));
    }
  }

  /**
   * Delivers what one take returned, in order, in writes of at most `maxEvents` events
   * and `maxBytes` of body. Each write that succeeds is acknowledged without holding up
   * the next one; all acknowledgements settle before returning, because a store hands
   * unacknowledged events out again. Resolves false when delivery must stop (closing, or
   * a fatal answer).
   */
  private async deliver(batch: StoredEvent[], signal: AbortSignal): Promise<boolean> {
    let acks: Promise<void> = Promise.resolve();
    const acknowledge = (chunk: StoredEvent[], events: Event[]) => {
      acks = acks.then(
        () => this.store.ack(chunk).then(() => this.hooks.egress?.(events)),
      ).catch((err: Error) => this.opts.onError?.(err));
    };
    this.partialWriteAt = batch.length < this.options.maxEvents ? performance.now() : undefined;
    try {
      let from = 0;
      let chunk: Chunk | undefined = this.chunkAt(batch, from);
      while (chunk) {
        const { entries, events }: Chunk = chunk;
        const end: number = from + entries.length;
        let next: Chunk | undefined;
        let inFlight = true;
        // Once this write is on its way, form the next one and let the sink below get it ready.
        if (end < batch.length) {
          setImmediate(() => {
            if (!inFlight || signal.aborted) return;
            next ??= this.chunkAt(batch, end);
            this.dst.prepare?.(next.events);
          });
        }
        try {
          await this.dst.write(events);
        } catch (err) {
          // Closing: leave the events in the store for the next start.
          if (err instanceof ClosedSinkError || signal.aborted) return false;
          if (this.opts.isFatal?.(err as Error)) {
            this.stop.abort();
            this.opts.onHalt?.(err as Error);
            return false;
          }
          if (!(await this.giveUp(events, err as Error))) {
            // Neither delivered nor dead-lettered: leave this write and the rest of the take
            // unacknowledged (order kept), and take them again after a pause.
            await this.pause(DEFAULTS.stores.takeWaitMs);
            return !signal.aborted;
          }
        } finally {
          inFlight = false;
        }
        acknowledge(entries, events);
        from = end;
        chunk = end < batch.length ? (next ?? this.chunkAt(batch, end)) : undefined;
      }
      return true;
    } finally {
      await acks;
    }
  }
}
