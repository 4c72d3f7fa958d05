import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import { encodeEnvelope } from '../codec/envelope';
import { ClosedSinkError, sleep, type Sink } from './sink';
import { StoreCorruptError, StoreFullError, type QueueStore, type StoredEvent } from '../stores/queue-store';
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
   * @default 250
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
  /** Called when the sink below fails in a way the queue cannot retry, and when the store fails. */
  onError?(err: Error): void;
  /**
   * Failures of the sink below that refuse these very events for good (an HTTP 413 or
   * 400): a write of several events is split in halves, the first delivered before the
   * second, each split again while refused, so the events the sink takes go through and
   * each event refused alone is given up on at once (dead-lettered, or dropped with no
   * dead-letter store) without holding up the ones after it.
   */
  isRejected?(err: Error): boolean;
  /** The reason a dead letter carries for the error it was given up on. @default the error's message */
  reason?(err: Error): string;
  /**
   * Failures after which delivery stops (an endpoint that is gone) until `resume()`: the
   * events, those of the failed write too, stay in the store, writes are still accepted,
   * and `onHalt` is told.
   */
  isFatal?(err: Error): boolean;
  /**
   * Delivery stopped by itself: the sink below failed in a way `isFatal` names, or the
   * store is damaged (a `StoreCorruptError`, after which writes reject with that error
   * until `resume()`). Told once per stop.
   */
  onHalt?(err: Error): void;
  /** Start without delivering: writes are stored, and delivery waits for `resume()`. @default false */
  suspended?: boolean;
  /**
   * Pause before the store is asked again after it failed an acknowledgement (or a
   * dead-letter write), in ms. @default 1000 (1s)
   */
  storeRetryMs?: number;
}

/** One write: the stored entries (to acknowledge) and their events (to send). */
interface Chunk {
  entries: StoredEvent[];
  events: Event[];
}

/** How one write to the sink below ended. */
type Sent =
  /** Delivered or given up on, and acknowledged (or being acknowledged). */
  | 'done'
  /** Neither: a dead-letter write failed, so it stays in the store and is taken again. */
  | 'again'
  /** Delivery stops: suspended, halted or closing. */
  | 'stop';

/** One run of the delivery loop, from `resume()` (or construction) to a suspend, halt or close. */
interface Cycle {
  stop: AbortController;
  done: Promise<void>;
}

/**
 * Decouples writers from delivery: `write` resolves once the events are in the store,
 * and one loop hands them, oldest first, to the sink below. Per-queue order is kept
 * because the loop waits for each write below before taking the next events. The loop
 * can be suspended and resumed without closing; writes are stored meanwhile.
 */
export class Queue implements Sink {
  readonly store: QueueStore;
  private readonly options: Required<Pick<QueueOptions, 'maxEvents' | 'maxBytes' | 'lingerMs' | 'drainTimeoutMs' | 'prefetch' | 'storeRetryMs'>>;
  private readonly measure: (events: readonly Event[]) => number;
  /** When the last take that was not full started its first write (performance.now()); undefined after a full one. */
  private partialWriteAt?: number;
  /** Body bytes per event of the last write measured: where the next write's size starts. */
  private bytesPerEvent = 0;
  private readonly hooks: QueueHooks;
  /** Aborted when closing has delivered long enough. */
  private readonly stop = new AbortController();
  /** The delivery loop, while one runs (or finishes the write it was in when stopped). */
  private cycle?: Cycle;
  /** Whether delivery should run: false once suspended or halted, until resumed. */
  private wanted: boolean;
  /** The store is damaged: writes reject with this until `resume()`. */
  private broken?: StoreCorruptError;
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
      storeRetryMs: opts.storeRetryMs ?? DEFAULTS.stores.takeWaitMs,
    };
    this.measure = opts.measure ?? ((events) => Buffer.byteLength(encodeEnvelope(events)));
    this.hooks = opts.hooks ?? {};
    this.wanted = !opts.suspended;
    if (this.wanted) this.startLoop();
  }

  /**
   * Commits events to the store; rejects with `StoreFullError` when the store is full, and
   * with the `StoreCorruptError` that stopped delivery while the store is damaged.
   */
  async write(events: readonly Event[]): Promise<void> {
    if (this.closing) throw new ClosedSinkError('queue');
    // A halted queue still hands writes to its store: a spool in front of a damaged store
    // keeps them on disk (or refuses them, so the request fails); a bare store rejects.
    if (events.length === 0) return;
    try {
      await this.store.append(events);
    } catch (err) {
      if (err instanceof StoreFullError) this.hooks.dropped?.(events, err);
      if (err instanceof StoreCorruptError) this.halt(err);
      throw err;
    }
    this.hooks.ingress?.(events);
  }

  /** Events accepted and not yet delivered. */
  pending(): Promise<number> {
    return this.store.pending();
  }

  /** Whether events are being handed to the sink below (not suspended, halted or closed). */
  get delivering(): boolean {
    return this.cycle !== undefined && !this.cycle.stop.signal.aborted;
  }

  /**
   * Stops handing events to the sink below. Resolves once the write in flight (if any)
   * has ended; a write it cut short leaves its events in the store, in order, for
   * `resume()`. Writes are still accepted and stored. Suspending twice is harmless.
   */
  async suspend(): Promise<void> {
    this.wanted = false;
    const cycle = this.cycle;
    cycle?.stop.abort();
    await cycle?.done;
  }

  /**
   * Delivers again, from the oldest event pending, after `suspend()` or a halt (a store
   * that was damaged is tried again). Resuming a queue that delivers, or one that is
   * closing, does nothing.
   */
  async resume(): Promise<void> {
    this.wanted = true;
    this.broken = undefined;
    while (this.cycle) {
      if (!this.cycle.stop.signal.aborted) return;
      await this.cycle.done; // the loop just suspended is ending its last write
    }
    if (this.wanted && !this.closing) this.startLoop();
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private startLoop(): void {
    const stop = new AbortController();
    const onClose = () => stop.abort();
    this.stop.signal.addEventListener('abort', onClose, { once: true });
    const cycle: Cycle = { stop, done: Promise.resolve() };
    cycle.done = this.run(stop.signal).finally(() => {
      this.stop.signal.removeEventListener('abort', onClose);
      if (this.cycle === cycle) this.cycle = undefined;
    });
    this.cycle = cycle;
  }

  /** Delivery stops by itself (a fatal failure below, a damaged store); `onHalt` is told once. */
  private halt(err: Error): void {
    if (err instanceof StoreCorruptError) {
      if (this.broken) return;
      this.broken = err;
    }
    this.wanted = false;
    this.cycle?.stop.abort();
    this.opts.onHalt?.(err);
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    // Keep delivering for a while, then cancel whatever wait or retry is under way.
    const deadline = setTimeout(() => this.stop.abort(), this.options.drainTimeoutMs);
    const drained = this.waitDrained();
    await Promise.race([drained, this.cycle?.done]);
    clearTimeout(deadline);
    this.stop.abort();
    // Closing the sink below cancels a write still in flight (a retry backoff, say);
    // its events stay unacknowledged in the store.
    await this.dst.close();
    await this.cycle?.done;
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
      await this.opts.deadLetters.add(events, this.opts.reason?.(err) ?? err.message);
      this.hooks.deadLettered?.(events, err);
      return true;
    } catch (dlqErr) {
      this.opts.onError?.(new Error(`${(dlqErr as Error).message}; the events stay in the queue and are tried again`, { cause: dlqErr }));
      return false;
    }
  }

  /** Resolves once nothing is pending, or closing must stop waiting (or the store cannot tell). */
  private async waitDrained(): Promise<void> {
    try {
      while (!this.stop.signal.aborted && (await this.store.pending()) > 0) {
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch {
      // A store that cannot count cannot drain either: leave the rest to the deadline.
      await this.pause(this.options.drainTimeoutMs, this.stop.signal);
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { prefetch } = this.options;
    while (!signal.aborted) {
      let batch: StoredEvent[];
      try {
        const linger = this.lingerLeft();
        if (linger > 0) await this.pause(linger, signal);
        batch = await this.store.take(prefetch, signal);
        if (batch.length === 0 && this.closing && (await this.store.pending()) === 0) return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof StoreCorruptError) return this.halt(err);
        this.opts.onError?.(err as Error);
        await this.pause(100, signal);
        continue;
      }
      if (batch.length === 0) continue;
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

  /** Waits `ms`, or less when the signal aborts. */
  private pause(ms: number, signal: AbortSignal): Promise<void> {
    return sleep(ms, signal, 'queue').catch(() => undefined);
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
   * unacknowledged events out again. Resolves false when delivery must stop (suspended,
   * halted or closing).
   */
  private async deliver(batch: StoredEvent[], signal: AbortSignal): Promise<boolean> {
    let acks: Promise<void> = Promise.resolve();
    const acknowledge = (chunk: Chunk) => {
      acks = acks.then(() => this.acknowledge(chunk, signal));
    };
    this.partialWriteAt = batch.length < this.options.maxEvents ? performance.now() : undefined;
    try {
      let from = 0;
      let chunk: Chunk | undefined = this.chunkAt(batch, from);
      while (chunk) {
        if (signal.aborted) return false;
        const end: number = from + chunk.entries.length;
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
        let sent: Sent;
        try {
          sent = await this.send(chunk, signal, acknowledge);
        } finally {
          inFlight = false;
        }
        if (sent === 'stop') return false;
        if (sent === 'again') {
          // Neither delivered nor dead-lettered: leave this write and the rest of the take
          // unacknowledged (order kept), and take them again after a pause.
          await this.pause(this.options.storeRetryMs, signal);
          return !signal.aborted;
        }
        from = end;
        chunk = end < batch.length ? (next ?? this.chunkAt(batch, end)) : undefined;
      }
      return true;
    } finally {
      await acks;
    }
  }

  /**
   * One write to the sink below, acknowledged once delivered or given up on. A write of
   * several events that the sink refuses (`isRejected`) is split in halves, the first
   * sent before the second, down to the single events it refuses.
   */
  private async send(chunk: Chunk, signal: AbortSignal, acknowledge: (chunk: Chunk) => void): Promise<Sent> {
    const { entries, events } = chunk;
    try {
      await this.dst.write(events);
    } catch (err) {
      const error = err as Error;
      // Suspended or closing: leave the events in the store, to be sent on resume or at the next start.
      if (err instanceof ClosedSinkError || signal.aborted) return 'stop';
      if (this.opts.isFatal?.(error)) {
        this.halt(error);
        return 'stop';
      }
      if (events.length > 1 && this.opts.isRejected?.(error)) {
        const half = Math.ceil(events.length / 2);
        const first = await this.send({ entries: entries.slice(0, half), events: events.slice(0, half) }, signal, acknowledge);
        if (first !== 'done' || signal.aborted) return first === 'done' ? 'stop' : first;
        return this.send({ entries: entries.slice(half), events: events.slice(half) }, signal, acknowledge);
      }
      if (!(await this.giveUp(events, error))) return 'again';
    }
    acknowledge(chunk);
    return 'done';
  }

  /**
   * Acknowledges delivered (or given up) events, asking again after a pause while the store
   * fails: taking them again before would send them again. A damaged store halts delivery.
   * When delivery stops first, they stay in the store and are sent again later (at least
   * once, as promised).
   */
  private async acknowledge(chunk: Chunk, signal: AbortSignal): Promise<void> {
    for (let failures = 1; ; failures++) {
      try {
        await this.store.ack(chunk.entries);
        this.hooks.egress?.(chunk.events);
        return;
      } catch (err) {
        if (err instanceof StoreCorruptError) return this.halt(err);
        if (signal.aborted) return;
        // The first failure, then the 2nd, 4th, 8th…: a store down for an hour fills no disk.
        if ((failures & (failures - 1)) === 0) {
          const times = failures === 1 ? '' : ` (${failures} times)`;
          this.opts.onError?.(new Error(`${(err as Error).message}; acknowledging ${chunk.events.length} delivered events failed${times}, asking again in ${this.options.storeRetryMs}ms`, { cause: err }));
        }
        await this.pause(this.options.storeRetryMs, signal);
      }
    }
  }
}
