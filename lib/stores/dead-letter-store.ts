import type { Event } from '../model/event';

/** An event given up on, with why and when. */
export interface DeadLetter {
  event: Event;
  /** What the last attempt said, e.g. `HTTP 500 from https://hooks.example/registry`. */
  reason: string;
  /** When it was added, as an ISO 8601 time. */
  failedAt: string;
}

/**
 * Where an endpoint keeps the events it gave up delivering, so a person can look at them
 * and send them again. Events are named by their event id.
 */
export interface DeadLetterStore {
  readonly description: string;
  add(events: readonly Event[], reason: string): Promise<void>;
  /** The oldest dead letters first, at most `limit` (default 100). */
  list(options?: { limit?: number }): Promise<DeadLetter[]>;
  /**
   * Removes the dead letters with these event ids (all of them when `ids` is omitted) and
   * returns their events, oldest first, for the caller to queue again. Unknown ids are ignored.
   */
  replay(ids?: readonly string[]): Promise<Event[]>;
  count(): Promise<number>;
  close(): Promise<void>;
}
