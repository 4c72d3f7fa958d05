import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import { StoreFullError, type EndpointControl, type QueueStore, type StoredEvent } from './queue-store';

export interface MemoryStoreOptions {
  /**
   * Most events held at once; past it new events are refused with `StoreFullError`
   * (and counted as dropped by the queue). 0 means no limit, as in Distribution.
   * @default 0
   */
  limit?: number;
}

/** What an acknowledged slot holds until the array is cut. */
const ACKED: StoredEvent = Object.freeze({ key: '', event: undefined as unknown as Event });

/** Pending events in the heap: Distribution's behaviour, lost when the process ends. */
export class MemoryStore implements QueueStore {
  readonly description = 'memory';
  private readonly limit: number;
  private items: StoredEvent[] = [];
  private head = 0;
  private seq = 0;
  private waiters = new Set<() => void>();
  private control?: EndpointControl;

  constructor(options: MemoryStoreOptions = {}) {
    this.limit = options.limit ?? DEFAULTS.queue.limit;
  }

  async append(events: readonly Event[]): Promise<void> {
    if (this.limit > 0 && this.items.length - this.head + events.length > this.limit) {
      throw new StoreFullError(this.description, this.limit);
    }
    for (const event of events) this.items.push({ key: String(++this.seq), event });
    for (const wake of this.waiters) wake();
  }

  async take(max: number, signal: AbortSignal, waitMs = DEFAULTS.stores.takeWaitMs): Promise<StoredEvent[]> {
    if (this.head >= this.items.length && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        signal.addEventListener('abort', done, { once: true });
        this.waiters.add(done);
      });
    }
    return this.items.slice(this.head, this.head + max);
  }

  async ack(entries: readonly StoredEvent[]): Promise<void> {
    // Entries are acknowledged in the order take() handed them out.
    const last = entries[entries.length - 1];
    if (!last) return;
    let i = this.head;
    while (i < this.items.length && this.items[i].key !== last.key) i++;
    if (i < this.items.length) {
      // The slots acknowledged let go of their events now, not when the array is next cut
      // (after 1,024 more, or half a backlog): kept until then, delivered events outlived
      // young collections and were copied to the old generation.
      this.items.fill(ACKED, this.head, i + 1);
      this.head = i + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  async pending(): Promise<number> {
    return this.items.length - this.head;
  }

  /** The control as last saved in this process: a memory store keeps nothing across restarts. */
  async loadControl(): Promise<EndpointControl | undefined> {
    return this.control && { ...this.control };
  }

  async saveControl(control: EndpointControl | undefined): Promise<void> {
    this.control = control && { ...control };
  }

  async close(): Promise<void> {
    for (const wake of this.waiters) wake();
  }
}
