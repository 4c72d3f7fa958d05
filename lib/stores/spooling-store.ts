import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import { SpoolFile } from './spool-file';
import { StoreClosedError, type EndpointControl, type QueueStore, type StoredEvent } from './queue-store';

/** Where a refusal is noted for a writer that runs its write under `refusableAppends`. */
export interface AppendRefusals {
  refused?: Error;
}

/** Events whose writer would rather they were refused than spooled, and where it hears of it. */
const refusable = new WeakMap<Event, AppendRefusals>();

/**
 * Writes `events` with `write` so that a SpoolingStore they reach refuses them when it
 * cannot store them in time, rather than spooling them, and notes the refusal in `into`.
 * For a writer that can fail its request instead, so that the client retries
 * (`queue.onstoreerror: fail`). The mark is on the event objects, which every sink on the
 * way passes on as they are.
 */
export async function refusableAppends(into: AppendRefusals, events: readonly Event[], write: () => Promise<void>): Promise<void> {
  for (const e of events) refusable.set(e, into);
  try {
    await write();
  } finally {
    for (const e of events) refusable.delete(e);
  }
}

/** A store could not take events in time, and the writer asked for them to be refused rather than spooled. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    readonly store: string,
    readonly count: number,
    readonly reason: string,
  ) {
    super(`${store}: ${count} event${count === 1 ? '' : 's'} refused: ${reason}; the request is failed for its client to retry`);
  }
}

/** What a SpoolingStore reports; the stats code implements it. */
export interface SpoolHooks {
  /** Events the store could not take in time went to the spool. */
  spooled?(events: readonly Event[]): void;
}

export interface SpoolingStoreOptions {
  /** The spool file (one per endpoint queue); created when first needed. */
  file: string;
  /**
   * Longest an append waits for the store before spooling its events. Infinity for a
   * store that answers at once (SQLite): then only a failed append is spooled, and a
   * healthy store costs no clock at all. @default 250 (ms)
   */
  commitTimeoutMs?: number;
  /** First pause between attempts to forward spooled events while the store fails; it doubles up to 2s. @default 50 (ms) */
  retryMs?: number;
  hooks?: SpoolHooks;
  /** Hears when spooling starts and ends, and of damaged spool lines. */
  onError?(err: Error): void;
}

/** An append on its way to the store: settled when the store answers or the deadline passes. */
class Flight {
  done = false;
  resolve!: (value: void | PromiseLike<void>) => void;
  reject!: (err: unknown) => void;
  readonly promise: Promise<void>;

  constructor(
    readonly seq: number,
    readonly events: readonly Event[],
    readonly refusals: AppendRefusals | undefined,
    readonly stored: Promise<void>,
    /** performance.now() past which it has waited long enough; Infinity for a store that answers at once. */
    readonly deadline: number,
  ) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

interface Entry {
  seq: number;
  events: Event[];
  /** For an append that timed out: whether it reached the store after all. */
  landing?: Promise<boolean>;
}

const MAX_FORWARD_EVENTS = 1000;
const MAX_RETRY_MS = 2000;

/**
 * A durable store with a local spool in front: an append the store does not take within
 * `commitTimeoutMs` (or refuses) goes to an fsync'd file instead, and resolves. While
 * anything is spooled, later appends go behind it in the spool, and a forwarder moves
 * the spooled events into the store, oldest first, once it answers again; so order is
 * kept and an accepted event is never only in memory. An append that timed out but
 * reaches the store later is not forwarded again. A spool a previous run left is
 * forwarded from start-up.
 */
export class SpoolingStore implements QueueStore {
  readonly description: string;
  readonly loadControl?: () => Promise<EndpointControl | undefined>;
  readonly saveControl?: (control: EndpointControl | undefined) => Promise<void>;
  private readonly file: SpoolFile;
  private readonly commitTimeoutMs: number;
  private readonly retryMs: number;
  private readonly onError: (err: Error) => void;
  private entries: Entry[] = [];
  private seq = 0;
  /** Appends on their way to the store, by seq, so oldest (first deadline) first. */
  private readonly flights = new Map<number, Flight>();
  /** One timer for every append in flight, set for the first deadline. */
  private clock?: NodeJS.Timeout;
  /** The forwarder, waiting for the appends in flight to land or be spooled. */
  private landed?: () => void;
  /** Ids of refused events whose append reached the store after all: dropped when taken. */
  private readonly cancelled = new Set<string>();
  private forwarding?: Promise<void>;
  /** The sync of what was spooled in this turn of the event loop. */
  private syncing?: Promise<void>;
  private readonly stop = new AbortController();
  private closed = false;

  constructor(
    readonly store: QueueStore,
    private readonly options: SpoolingStoreOptions,
  ) {
    this.description = store.description;
    this.commitTimeoutMs = options.commitTimeoutMs ?? DEFAULTS.queue.commitTimeoutMs;
    this.retryMs = options.retryMs ?? 50;
    this.onError = options.onError ?? ((err) => console.error(`notifications: ${err.message}`));
    if (store.loadControl) this.loadControl = () => store.loadControl!();
    if (store.saveControl) this.saveControl = (control) => store.saveControl!(control);
    this.file = new SpoolFile(options.file, this.onError);
    for (const batch of this.file.load()) this.entries.push(batch);
    this.seq = this.entries.reduce((max, e) => Math.max(max, e.seq), 0);
    if (this.entries.length > 0) {
      this.onError(new Error(`${this.description}: ${this.spooled} events left in the spool ${options.file} by a previous run; forwarding them to the store`));
      setImmediate(() => this.forwardSoon());
    }
  }

  /** Events in the spool, not yet in the store. */
  get spooled(): number {
    return this.entries.reduce((n, e) => n + e.events.length, 0);
  }

  append(events: readonly Event[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError(this.description, 'append'));
    if (events.length === 0) return Promise.resolve();
    const refusals = refusable.get(events[0]);
    const seq = ++this.seq;
    if (this.entries.length > 0) {
      if (refusals) return Promise.reject(this.refusal(events, refusals, 'events spooled before them are still waiting for the store'));
      return this.spool(seq, events);
    }
    // The store's append, raced against the commit wait: no timer of its own, one clock
    // serves every append in flight, so a healthy store costs a map entry per append.
    let stored: Promise<void>;
    try {
      stored = this.store.append(events);
    } catch (err) {
      stored = Promise.reject(err);
    }
    const flight = new Flight(seq, events, refusals, stored, performance.now() + this.commitTimeoutMs);
    this.flights.set(seq, flight);
    this.windClock();
    stored.then(
      () => this.stored(flight),
      (err: Error) => this.failed(flight, err.message),
    );
    return flight.promise;
  }

  private stored(flight: Flight): void {
    if (flight.done) return;
    flight.done = true;
    this.flights.delete(flight.seq);
    this.wakeForwarder();
    flight.resolve();
  }

  /** The store failed the append, or `landing` it did not answer in time: spool it, or refuse it. */
  private failed(flight: Flight, reason: string, landing?: Promise<boolean>): void {
    if (flight.done) return;
    flight.done = true;
    this.flights.delete(flight.seq);
    const { events, refusals } = flight;
    try {
      if (refusals) {
        // The client is told to retry: should the append still land, its events must not
        // go out. Marked now, since the store may hand them out before its answer reaches us.
        if (landing) {
          for (const e of events) this.cancelled.add(e.id);
          void landing.then((landed) => landed || events.forEach((e) => this.cancelled.delete(e.id)));
        }
        flight.reject(this.refusal(events, refusals, reason));
      } else {
        flight.resolve(this.spool(flight.seq, events, landing, reason));
      }
    } catch (err) {
      flight.reject(err);
    } finally {
      this.wakeForwarder();
    }
  }

  /** Sets the clock for the first deadline of the appends in flight, unless it is set. */
  private windClock(): void {
    if (this.clock || this.flights.size === 0) return;
    const first = this.flights.values().next().value as Flight;
    if (first.deadline === Infinity) return;
    this.clock = setTimeout(() => {
      this.clock = undefined;
      const now = performance.now();
      for (const flight of this.flights.values()) {
        if (flight.deadline > now) break;
        this.failed(flight, `no answer within ${this.commitTimeoutMs}ms`, flight.stored.then(() => true, () => false));
      }
      this.windClock();
    }, Math.max(0, first.deadline - performance.now()));
  }

  private wakeForwarder(): void {
    if (this.flights.size === 0) this.landed?.();
  }

  take(max: number, signal: AbortSignal, waitMs?: number): Promise<StoredEvent[]> {
    // Checked when the take returns: a refusal may come while it waits.
    return this.store.take(max, signal, waitMs).then((entries) => (this.cancelled.size === 0 ? entries : this.dropCancelled(entries)));
  }

  ack(entries: readonly StoredEvent[]): Promise<void> {
    return this.store.ack(entries);
  }

  /** What the store holds plus what waits in the spool. */
  async pending(): Promise<number> {
    return (await this.store.pending()) + this.spooled;
  }

  async open(): Promise<void> {
    await this.store.open?.();
  }

  /** Stops forwarding and closes the store; what is still spooled stays on disk for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The clock stays: an append in flight still settles at its deadline.
    this.stop.abort();
    // Closing the store ends a forwarding append that hangs on it.
    await this.store.close();
    await this.forwarding;
    this.file.close();
  }

  private refusal(events: readonly Event[], into: AppendRefusals, reason: string): StoreUnavailableError {
    const err = new StoreUnavailableError(this.description, events.length, reason);
    into.refused ??= err;
    return err;
  }

  /**
   * Puts the events in the spool file, in the order their appends began; resolves once
   * they are synced. Batches spooled in one turn of the event loop share one sync.
   */
  private spool(seq: number, events: readonly Event[], landing?: Promise<boolean>, reason?: string): Promise<void> {
    const first = this.entries.length === 0;
    this.file.append({ seq, events: [...events] });
    let at = this.entries.length;
    while (at > 0 && this.entries[at - 1].seq > seq) at--;
    this.entries.splice(at, 0, { seq, events: [...events], landing });
    this.options.hooks?.spooled?.(events);
    if (first) {
      this.onError(new Error(`${this.description}: cannot take events (${reason ?? 'spooling'}); keeping them in ${this.options.file} until it can`));
    }
    this.forwardSoon();
    return (this.syncing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.syncing = undefined;
        try {
          this.file.sync();
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    }));
  }

  private forwardSoon(): void {
    if (this.forwarding || this.closed || this.entries.length === 0) return;
    this.forwarding = this.forward().finally(() => {
      this.forwarding = undefined;
      // An entry spooled as the forwarder finished.
      this.forwardSoon();
    });
  }

  /** Moves spooled events into the store, oldest first, until the spool is empty or the store closes. */
  private async forward(): Promise<void> {
    let wait = this.retryMs;
    let forwarded = 0;
    let failures = 0;
    while (!this.closed && this.entries.length > 0) {
      // Appends still on their way first: each lands or joins the spool in its place.
      if (this.flights.size > 0) {
        await this.unlessStopped(new Promise<void>((resolve) => (this.landed = resolve)));
        this.landed = undefined;
        continue;
      }
      const head = this.entries[0];
      if (head.landing) {
        const landed = await this.unlessStopped(head.landing);
        if (landed === undefined) continue; // closing
        head.landing = undefined;
        if (landed) this.finish([head]);
        continue;
      }
      const batch: Entry[] = [];
      let count = 0;
      for (const entry of this.entries) {
        if (entry.landing || (batch.length > 0 && count + entry.events.length > MAX_FORWARD_EVENTS)) break;
        batch.push(entry);
        count += entry.events.length;
      }
      try {
        await this.store.append(batch.flatMap((e) => e.events));
        this.finish(batch);
        forwarded += count;
        wait = this.retryMs;
      } catch (err) {
        if (this.closed) return;
        if (failures++ === 0) this.onError(new Error(`${this.description}: forwarding spooled events failed: ${(err as Error).message}; trying again`));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
        });
        wait = Math.min(wait * 2, MAX_RETRY_MS);
      }
    }
    if (this.entries.length === 0 && forwarded > 0) {
      this.onError(new Error(`${this.description}: takes events again; ${forwarded} spooled events forwarded to it`));
    }
  }

  /** `promise`, or undefined as soon as the store closes. */
  private unlessStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    const { signal } = this.stop;
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const stop = () => resolve(undefined);
      signal.addEventListener('abort', stop, { once: true });
      void promise.then((value) => {
        signal.removeEventListener('abort', stop);
        resolve(value);
      });
    });
  }

  /** The store holds these entries: off the spool. */
  private finish(done: Entry[]): void {
    const gone = new Set(done);
    this.entries = this.entries.filter((e) => !gone.has(e));
    if (this.entries.length === 0) this.file.clear();
    else this.file.done(done.map((e) => e.seq));
  }

  private async dropCancelled(entries: StoredEvent[]): Promise<StoredEvent[]> {
    const drop = entries.filter((e) => this.cancelled.has(e.event.id));
    if (drop.length === 0) return entries;
    await this.store.ack(drop);
    for (const e of drop) this.cancelled.delete(e.event.id);
    return entries.filter((e) => !drop.includes(e));
  }
}
