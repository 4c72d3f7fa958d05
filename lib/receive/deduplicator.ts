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

/** Ids in process memory: for a single receiver process. */
export class MemoryDeduplicator implements Deduplicator {
  private readonly windowMs: number;
  private readonly maxEntries: number;
  // A Map iterates in insertion order, so its head is always the oldest id.
  private readonly seen = new Map<string, { until: number; done: boolean }>();
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
    this.seen.set(id, { until: now + this.windowMs, done: false });
    if (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value as string);
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
    for (const [id, { until }] of this.seen) {
      if (until > now) break;
      this.seen.delete(id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.seen.clear();
  }
}
