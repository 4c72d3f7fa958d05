import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import { ClosedSinkError, type Sink } from './sink';
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
  /** Most events handed to the sink below in one write (one envelope). @default 1 */
  maxEvents?: number;
  /**
   * Most events read from the store at once, then written `maxEvents` at a time: fewer
   * round trips to a durable store, and the next write prepared while one is in flight.
   * @default 100, or twice maxEvents when larger
   */
  prefetch?: number;
  /**
   * How long to wait for more events before writing a partial batch, in ms; only
   * matters when `maxEvents` > 1. @default 0
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

/**
 * Decouples writers from delivery: `write` resolves once the events are in the store,
 * and one loop hands them, oldest first, to the sink below. Per-queue order is kept
 * because the loop waits for each write below before taking the next events.
 */
export class Queue implements Sink {
  readonly store: QueueStore;
  private readonly options: Required<Pick<QueueOptions, 'maxEvents' | 'lingerMs' | 'drainTimeoutMs' | 'prefetch'>>;
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
      prefetch: Math.max(maxEvents, opts.prefetch ?? Math.max(DEFAULTS.queue.prefetch, 2 * maxEvents)),
      lingerMs: opts.lingerMs ?? DEFAULTS.endpoint.lingerMs,
      drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULTS.queue.drainTimeoutMs,
    };
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

  /** The sink below gave up on these events: dead-letter them when there is a store for it. */
  private async giveUp(events: Event[], err: Error): Promise<void> {
    this.opts.onError?.(err);
    if (!this.opts.deadLetters) {
      this.hooks.dropped?.(events, err);
      return;
    }
    try {
      await this.opts.deadLetters.add(events, err.message);
      this.hooks.deadLettered?.(events, err);
    } catch (dlqErr) {
      this.opts.onError?.(dlqErr as Error);
      this.hooks.dropped?.(events, err);
    }
  }

  private async waitDrained(): Promise<void> {
    while (!this.stop.signal.aborted && (await this.store.pending()) > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    const { maxEvents, lingerMs, prefetch } = this.options;
    while (!signal.aborted) {
      let batch: StoredEvent[];
      try {
        batch = await this.store.take(prefetch, signal);
        if (batch.length > 0 && batch.length < maxEvents && lingerMs > 0) {
          await new Promise((r) => setTimeout(r, lingerMs));
          batch = await this.store.take(prefetch, signal, 0);
        }
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
   * Delivers what one take returned, `maxEvents` per write, in order. Each write that
   * succeeds is acknowledged without holding up the next one; all acknowledgements settle
   * before returning, because a store hands unacknowledged events out again. Resolves
   * false when delivery must stop (closing, or a fatal answer).
   */
  private async deliver(batch: StoredEvent[], signal: AbortSignal): Promise<boolean> {
    let acks: Promise<void> = Promise.resolve();
    const acknowledge = (chunk: StoredEvent[], events: Event[]) => {
      acks = acks.then(
        () => this.store.ack(chunk).then(() => this.hooks.egress?.(events)),
      ).catch((err: Error) => this.opts.onError?.(err));
    };
    const chunks: StoredEvent[][] = [];
    for (let i = 0; i < batch.length; i += this.options.maxEvents) chunks.push(batch.slice(i, i + this.options.maxEvents));
    const eventsOf = chunks.map((chunk) => chunk.map((b) => b.event));
    try {
      for (let c = 0; c < chunks.length; c++) {
        const chunk = chunks[c];
        const events = eventsOf[c];
        // Once this write is on its way, let the sink below get the next one ready.
        const next = eventsOf[c + 1];
        if (next && this.dst.prepare) setImmediate(() => this.dst.prepare?.(next));
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
          await this.giveUp(events, err as Error);
        }
        acknowledge(chunk, events);
      }
      return true;
    } finally {
      await acks;
    }
  }
}
