import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import {
  LogClock,
  type AttemptRecord,
  type DeliveryLog,
  type EventQuery,
  type EventState,
  type LogEntry,
  type LoggedEvent,
  type Page,
  type Paged,
} from '../stores/delivery-log';

export interface DeliveryRecorderOptions {
  /** Buffered entries are written at least this often, in ms. @default 20 */
  flushMs?: number;
  /**
   * Most entries (an attempt, or one event changing state) held while the log store is
   * slow or down; past it the oldest are dropped and counted. @default 20000
   */
  bufferLimit?: number;
  /** Whether attempts are recorded (`log.attempts` > 0). @default true */
  attempts?: boolean;
  /** Whether events are recorded (`log.events` > 0). @default true */
  events?: boolean;
  /** Told when the log store fails, at most once per 10 seconds. */
  onError?(err: Error): void;
}

/** An attempt, as `DeliveryRecorder.attempt` takes it: the recorder stamps id and time. */
export type NewAttempt = Omit<AttemptRecord, 'id' | 'time'>;

/**
 * Between the delivery hooks and a `DeliveryLog`: takes attempts and event state changes
 * as they happen, without waiting, and writes them in batches (every `flushMs`, or at the
 * next turn of the event loop past a few hundred). Delivery never waits on the log; while
 * the log store is down or slower than delivery, the buffer keeps the newest
 * `bufferLimit` entries and counts the ones it dropped.
 * Reads write what is buffered first, so what the hooks reported is in their answer.
 */
export class DeliveryRecorder {
  /**
   * Entries not yet written, in the order they came, from `head` on (those before it were
   * dropped, and are cut off in bulk); the entry at `head` is number `first`.
   */
  private buffer: LogEntry[] = [];
  private head = 0;
  private first = 1;
  /** Entries in the buffer, an event counted once per event. */
  private size = 0;
  /** The last entry of the buffer, when its events array is the recorder's own (more can join it). */
  private owned?: LogEntry;
  /** A write is due at the next turn of the event loop. */
  private due = false;
  /** Every entry up to this number was written, dropped, or failed once. */
  private settled = 0;
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private timer?: NodeJS.Timeout;
  /** When the flush timer was set: what came after it may be held back (see `toHold`). */
  private armedAt = 0;
  private writing = false;
  /** A write was asked for while one was under way. */
  private again = false;
  /** The last write failed: the next waits for the retry timer. */
  private failing = false;
  private readonly clock = new LogClock();
  private readonly listeners = new Set<(attempt: AttemptRecord) => void>();
  private readonly feedListeners = new Set<() => void>();
  private readonly flushMs: number;
  private readonly bufferLimit: number;
  private lastErrorAt = -Infinity;
  private closed = false;
  /** Entries dropped because the buffer was full (the log store slow or down). */
  dropped = 0;

  constructor(
    readonly log: DeliveryLog,
    private readonly options: DeliveryRecorderOptions = {},
  ) {
    this.flushMs = options.flushMs ?? DEFAULTS.stores.logFlushMs;
    this.bufferLimit = options.bufferLimit ?? DEFAULTS.stores.logBufferLimit;
  }

  /** Records an attempt (stamped with an id and the time now) and tells the listeners. */
  attempt(a: NewAttempt): AttemptRecord {
    const record: AttemptRecord = { id: String(this.clock.next()), time: new Date().toISOString(), ...a };
    if (this.options.attempts !== false || (!a.test && this.options.events !== false)) this.push({ kind: 'attempt', attempt: record });
    for (const listener of this.listeners) listener(record);
    return record;
  }

  /** Records events entering a state: `pending` adds them to the endpoint's event log. */
  events(endpoint: string, state: EventState, events: readonly Event[]): void {
    if (this.options.events === false || events.length === 0 || this.closed) return;
    const at = Date.now();
    const seq = state === 'pending' ? this.clock.next(events.length, at) : 0;
    // Events that come one request at a time join the entry before them when they follow
    // it (same endpoint and state; for new events, the next seqs): fewer entries to write.
    const last = this.buffer.length > this.head ? this.buffer[this.buffer.length - 1] : undefined;
    if (last?.kind === 'events' && last.endpoint === endpoint && last.state === state && (state !== 'pending' || last.seq + last.events.length === seq)) {
      if (this.owned !== last) {
        last.events = last.events.slice();
        this.owned = last;
      }
      for (const event of events) (last.events as Event[]).push(event);
      this.added(events.length);
      return;
    }
    this.push({ kind: 'events', endpoint, state, events, seq, at });
  }

  /**
   * Records events the registry emitted for the pull feed (before any endpoint's filter).
   * While a feed reader waits (`urgent`), they are written at once instead of in the next
   * batch, so that a long poll hears of them without the batching delay.
   */
  feed(events: readonly Event[], urgent = false): void {
    if (events.length === 0) return;
    const at = Date.now();
    this.push({ kind: 'feed', events, seq: this.clock.next(events.length, at), at });
    if (urgent && !this.failing) queueMicrotask(() => this.kick());
  }

  /** Calls `listener` after each write that added feed events; returns how to stop. */
  onFeedWritten(listener: () => void): () => void {
    this.feedListeners.add(listener);
    return () => this.feedListeners.delete(listener);
  }

  /** Calls `listener` with each attempt recorded from now on; returns how to stop. */
  onAttempt(listener: (attempt: AttemptRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** How many attempt listeners there are (a stream that ended must leave none behind). */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** The number of the last entry recorded. */
  private get pushed(): number {
    return this.first + this.buffer.length - this.head - 1;
  }

  private push(entry: LogEntry): void {
    if (this.closed) return;
    this.buffer.push(entry);
    this.added(entrySize(entry));
  }

  /** Counts `n` more in the buffer and sees that they are written in time. */
  private added(n: number): void {
    this.size += n;
    if (this.size > this.bufferLimit) this.bound();
    if (this.failing) return; // the retry timer writes it
    // Past a few hundred, at the next turn of the event loop: not in the middle of the
    // delivery step that recorded them. A caller that does not let the loop turn (a loop
    // of awaits) has them written at once well before the limit.
    if (this.size >= this.bufferLimit / 8) this.kick();
    else if (this.size >= this.bufferLimit / 40) {
      if (!this.due) {
        this.due = true;
        setImmediate(() => {
          this.due = false;
          this.kick();
        });
      }
    } else this.arm();
  }

  /** Sets the flush timer, unless it is set. */
  private arm(): void {
    if (this.timer) return;
    this.armedAt = Date.now();
    this.timer = setTimeout(() => this.kick(), this.flushMs).unref();
  }

  /** Drops the oldest entries past the limit (the oldest events of an entry, when that is enough), counting each event. */
  private bound(): void {
    let drop = this.head;
    while (this.size > this.bufferLimit && drop < this.buffer.length) {
      const entry = this.buffer[drop];
      const n = entrySize(entry);
      // With a large limit, a few hundred more go at once, so that a full buffer does not
      // copy an entry's events for each event recorded.
      const over = Math.max(this.size - this.bufferLimit, Math.floor(this.bufferLimit / 64));
      if (entry.kind !== 'attempt' && n > over) {
        // Part of the entry is enough: it keeps its newest events.
        this.buffer[drop] = { ...entry, events: entry.events.slice(over), seq: entry.kind === 'events' && entry.state !== 'pending' ? 0 : entry.seq + over };
        if (this.owned === entry) this.owned = this.buffer[drop];
        this.size -= over;
        this.dropped += over;
        break;
      }
      this.size -= n;
      this.dropped += n;
      drop++;
    }
    this.first += drop - this.head;
    this.head = drop;
    if (this.head >= 1024 && this.head * 2 >= this.buffer.length) {
      this.buffer.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * Resolves once every entry recorded before the call is in the log; at once while the
   * log store is failing (a reader then reads what the store has).
   */
  flush(): Promise<void> {
    const upTo = this.pushed;
    if (this.settled >= upTo || this.failing) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
    this.kick();
    return done;
  }

  /** Writes what is buffered now, or as soon as the write under way ends. */
  private kick(): void {
    if (this.writing) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    // Nothing left to write (what was not written was dropped): every waiter is done.
    if (this.buffer.length === this.head) return this.settle(this.pushed);
    this.writing = true;
    void this.write().finally(() => {
      this.writing = false;
      if (this.again && !this.failing) this.kick();
      this.again = false;
    });
  }

  /** Whether what is buffered may wait for the flush timer: a few entries, nobody waiting for them, not closing. */
  private get canWait(): boolean {
    return this.size < this.bufferLimit / 40 && this.waiters.length === 0 && !this.closed;
  }

  /**
   * The entries a write of the timer's (nobody waits, the buffer is small) leaves for the
   * next, for a log that writes an event once when its delivery comes in the same write
   * (`holdsYoungEvents`): events accepted after the timer was set (within the last
   * `flushMs`) whose delivery is not in the buffer yet, and what follows about them. That
   * delivery is usually a few ms away; it then joins them, and the event is written once,
   * delivered, instead of being written and then changed.
   */
  private toHold(): Set<LogEntry> | undefined {
    if (!this.log.holdsYoungEvents || !this.canWait) return undefined;
    const end = this.buffer.length;
    // Measured from the timer's setting, not only from the clock now: a timer may fire a
    // millisecond before its time, and the entry that set it must not count as young.
    const young = Math.max(this.armedAt, Date.now() - this.flushMs);
    const key = (endpoint: string, id: string) => `${endpoint}\n${id}`;
    const settled = new Set<string>();
    for (let i = this.head; i < end; i++) {
      const e = this.buffer[i];
      if (e.kind === 'events' && e.state !== 'pending') for (const event of e.events) settled.add(key(e.endpoint, event.id));
    }
    let held: Set<LogEntry> | undefined;
    const heldIds = new Set<string>();
    for (let i = this.head; i < end; i++) {
      const e = this.buffer[i];
      if (e.kind === 'feed') continue;
      const endpoint = e.kind === 'attempt' ? e.attempt.endpoint : e.endpoint;
      const ids = e.kind === 'attempt' ? e.attempt.eventIds : e.events.map((event) => event.id);
      // What follows about a held event is held with it: the log applies entries in order.
      let hold = heldIds.size > 0 && ids.some((id) => heldIds.has(key(endpoint, id)));
      if (!hold && e.kind === 'events' && e.state === 'pending' && e.at > young) hold = ids.some((id) => !settled.has(key(endpoint, id)));
      if (!hold) continue;
      (held ??= new Set()).add(e);
      if (e.kind === 'events' && e.state === 'pending') for (const id of ids) heldIds.add(key(endpoint, id));
    }
    return held;
  }

  private async write(): Promise<void> {
    while (this.buffer.length > this.head) {
      const held = this.toHold();
      const all = this.head === 0 ? this.buffer : this.buffer.slice(this.head);
      const taken = held ? all.filter((e) => !held.has(e)) : all;
      if (taken.length === 0) {
        this.arm();
        return;
      }
      const takenFirst = this.first;
      let size = this.size;
      if (held) {
        // What is held is numbered after what is taken, as if it had come later: nobody
        // waits for it (a reader's flush holds nothing back).
        this.buffer = all.filter((e) => held.has(e));
        if (this.owned && !held.has(this.owned)) this.owned = undefined;
        size = taken.reduce((n, e) => n + entrySize(e), 0);
      } else {
        this.buffer = [];
        this.owned = undefined;
      }
      this.head = 0;
      this.first += taken.length;
      this.size -= size;
      try {
        await this.log.write(taken);
        this.failing = false;
        this.settle(takenFirst + taken.length - 1);
        if (taken.some((t) => t.kind === 'feed')) for (const listener of this.feedListeners) listener();
        // A few entries that came during the write (or were held) wait for the flush timer,
        // unless someone waits for them: a store pays for each write (SQLite a commit, Redis
        // a round trip), and a write after each answer would carry one delivery's entries.
        if (this.canWait) {
          if (this.buffer.length > this.head) this.arm();
          return;
        }
      } catch (err) {
        this.failing = true;
        // Kept for the next try, ahead of what came meanwhile; the oldest go past the limit.
        // (Numbered just before what came meanwhile: some of that may have been dropped.)
        this.buffer = taken.concat(this.buffer.slice(this.head));
        this.head = 0;
        this.first -= taken.length;
        this.size += size;
        this.bound();
        const now = performance.now();
        if (now - this.lastErrorAt >= 10_000) {
          this.lastErrorAt = now;
          this.options.onError?.(new Error(`delivery log ${this.log.description}: ${(err as Error).message}; ${this.size} entries kept to try again, ${this.dropped} dropped so far`, { cause: err }));
        }
        // Readers waiting read what the store has; the next try is in a second.
        this.settle(this.pushed);
        if (!this.closed) this.timer = setTimeout(() => this.kick(), 1000).unref();
        return;
      }
    }
  }

  private settle(upTo: number): void {
    this.settled = Math.max(this.settled, upTo);
    const ready = this.waiters.filter((w) => w.upTo <= this.settled);
    this.waiters = this.waiters.filter((w) => w.upTo > this.settled);
    for (const w of ready) w.resolve();
  }

  /** One endpoint's attempts, newest first. */
  async attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>> {
    await this.flush();
    return this.log.attempts(endpoint, page);
  }

  /** Events matching the query, newest first. */
  async search(query: EventQuery): Promise<Paged<LoggedEvent>> {
    await this.flush();
    return this.log.events(query);
  }

  /** The event with this id in each endpoint's log that has it, with its attempts. */
  async event(id: string, endpoints: readonly string[]): Promise<Array<LoggedEvent & { attemptList: AttemptRecord[] }>> {
    await this.flush();
    const found = await this.log.event(id, endpoints);
    return Promise.all(found.map(async (e) => ({ ...e, attemptList: await this.log.eventAttempts(e.endpoint, id) })));
  }

  /** Writes what is buffered (trying once) and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    this.listeners.clear();
    this.feedListeners.clear();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    await this.log.close();
  }
}

/** How many the buffer counts an entry as: its events, or one for an attempt. */
function entrySize(entry: LogEntry): number {
  return entry.kind === 'attempt' ? 1 : entry.events.length;
}
