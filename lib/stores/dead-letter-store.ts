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

/**
 * Sends dead letters back to a queue without a moment in which they are in neither: the
 * chosen events (those with these ids, or all) are queued first, with `queue`, and only
 * then removed from the dead-letter store. A queue that refuses them leaves them where
 * they were; a removal that fails after queueing leaves them in both (a duplicate, which
 * at-least-once allows, rather than a loss). Resolves to the events queued, oldest first.
 */
export async function replayDeadLetters(
  deadLetters: DeadLetterStore,
  queue: (events: Event[]) => Promise<void>,
  ids?: readonly string[],
): Promise<Event[]> {
  const wanted = ids ? new Set(ids) : undefined;
  const letters = await deadLetters.list({ limit: Number.MAX_SAFE_INTEGER });
  const events = letters.map((l) => l.event).filter((e) => !wanted || wanted.has(e.id));
  if (events.length === 0) return [];
  await queue(events);
  await deadLetters.replay(events.map((e) => e.id));
  return events;
}
