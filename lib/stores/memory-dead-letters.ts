import { DEFAULTS } from '../config/defaults';
import type { Event } from '../model/event';
import type { DeadLetter, DeadLetterStore } from './dead-letter-store';

export interface MemoryDeadLetterStoreOptions {
  /**
   * Most dead letters kept; past it the oldest are forgotten. 0 means no limit.
   * @default 10000
   */
  limit?: number;
}

/** Dead letters in the heap, lost when the process ends; the companion of `MemoryStore`. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly description = 'memory';
  private readonly limit: number;
  private letters: DeadLetter[] = [];

  constructor(options: MemoryDeadLetterStoreOptions = {}) {
    this.limit = options.limit ?? DEFAULTS.stores.memoryDeadLetterLimit;
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    const failedAt = new Date().toISOString();
    for (const event of events) this.letters.push({ event, reason, failedAt });
    if (this.limit > 0 && this.letters.length > this.limit) this.letters.splice(0, this.letters.length - this.limit);
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return this.letters.slice(0, options.limit ?? DEFAULTS.stores.deadLetterListLimit);
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    const wanted = ids && new Set(ids);
    const out = this.letters.filter((l) => !wanted || wanted.has(l.event.id));
    this.letters = wanted ? this.letters.filter((l) => !wanted.has(l.event.id)) : [];
    return out.map((l) => l.event);
  }

  async count(): Promise<number> {
    return this.letters.length;
  }

  async close(): Promise<void> {}
}
