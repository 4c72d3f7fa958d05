import { DEFAULTS } from '../config/defaults';

/** What a deduplicator knows of an id: never seen (now claimed), being handled, or handled. */
export type Sighting = 'new' | 'handling' | 'done';

/**
 * Remembers event ids for a while so that a redelivered event is recognised. `claim`
 * records an id as being handled; `complete` marks it handled, after which it is a
 * duplicate for the rest of the window; `forget` undoes a claim, so an event whose
 * handling failed is processed again when the sender retries.
 */
export interface Deduplicator {
  /** `new` the first time an id is offered within the window (it is now claimed), else what is known of it. */
  claim(id: string): Promise<Sighting>;
  /** The claimed id was handled: later deliveries of it are duplicates. */
  complete(id: string): Promise<void>;
  /** Drops an id so that its next delivery counts as new. */
  forget(id: string): Promise<void>;
  close(): Promise<void>;
}

export interface MemoryDeduplicatorOptions {
  /**
   * How long an id is remembered, in milliseconds.
   * @default 600000 (10 minutes)
   */
  windowMs?: number;
  /**
   * How many ids are kept at most; the oldest are dropped first beyond it.
   * @default 100000
   */
  maxEntries?: number;
}

/** Thrown for an option value a deduplicator cannot use. */
export class DeduplicatorOptionsError extends Error {
  override readonly name = 'DeduplicatorOptionsError';
  constructor(message: string) {
    super(message);
  }
}

/** Thrown by `firstSeen` after `close()`. */
export class ClosedDeduplicatorError extends Error {
  override readonly name = 'ClosedDeduplicatorError';
  constructor() {
    super('deduplicator is closed');
  }
}

/** An option that must be a positive number; `DeduplicatorOptionsError` otherwise. */
export function positiveOption(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new DeduplicatorOptionsError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** One remembered id. */
interface Remembered {
  id: string;
  until: number;
  done: boolean;
}

/** Ids in process memory: for a single receiver process. */
export class MemoryDeduplicator implements Deduplicator {
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly seen = new Map<string, Remembered>();
  /**
   * The ids in the order they were claimed, from `head` on: the oldest is found without
   * walking the Map from its start, which V8 makes slower with every deletion there (a
   * full deduplicator deletes there at every claim). An entry the Map no longer holds
   * (forgotten, or claimed again since) is skipped.
   */
  private order: Remembered[] = [];
  private head = 0;
  private closed = false;

  constructor(options: MemoryDeduplicatorOptions = {}) {
    this.windowMs = positiveOption('windowMs', options.windowMs ?? DEFAULTS.deduplicator.windowMs);
    this.maxEntries = positiveOption('maxEntries', options.maxEntries ?? DEFAULTS.deduplicator.maxEntries);
  }

  async claim(id: string): Promise<Sighting> {
    if (this.closed) throw new ClosedDeduplicatorError();
    const now = Date.now();
    this.expire(now);
    const known = this.seen.get(id);
    if (known) return known.done ? 'done' : 'handling';
    const entry: Remembered = { id, until: now + this.windowMs, done: false };
    this.seen.set(id, entry);
    this.order.push(entry);
    while (this.seen.size > this.maxEntries) this.dropOldest();
    this.compact();
    return 'new';
  }

  async complete(id: string): Promise<void> {
    const known = this.seen.get(id);
    if (known) known.done = true;
  }

  async forget(id: string): Promise<void> {
    this.seen.delete(id);
  }

  /** How many ids are remembered now. */
  get size(): number {
    this.expire(Date.now());
    return this.seen.size;
  }

  private expire(now: number): void {
    while (this.head < this.order.length && this.order[this.head].until <= now) this.drop(this.order[this.head++]);
  }

  private dropOldest(): void {
    while (this.head < this.order.length) {
      const entry = this.order[this.head++];
      if (this.seen.get(entry.id) === entry) return this.drop(entry);
    }
  }

  private drop(entry: Remembered): void {
    if (this.seen.get(entry.id) === entry) this.seen.delete(entry.id);
  }

  /** Lets go of the part of `order` already passed, and of forgotten entries once they outnumber the live ones. */
  private compact(): void {
    const length = this.order.length - this.head;
    if (this.head > 1024 && this.head > length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    } else if (length > 2 * this.maxEntries + 1024) {
      this.order = this.order.slice(this.head).filter((e) => this.seen.get(e.id) === e);
      this.head = 0;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.seen.clear();
    this.order = [];
    this.head = 0;
  }
}
