import type { Event } from '../model/event';

/** One event held by a store, with the key the store acknowledges it by. */
export interface StoredEvent {
  key: string;
  event: Event;
}

/**
 * Where a Queue keeps the events it has accepted but not yet delivered.
 *
 * A store hands events out in the order they were appended. `take` returns up to `max`
 * of the oldest events not yet acknowledged (the same ones again until they are), and
 * `ack` removes them for good. A durable store has the events on disk (or in Redis) when
 * `append` resolves, so a crash after that loses nothing.
 */
export interface QueueStore {
  /** A short name for messages and stats: `memory`, `sqlite:/path`, `redis://host:port`. */
  readonly description: string;
  append(events: readonly Event[]): Promise<void>;
  /** Waits until at least one event is available, the signal aborts, or `waitMs` passes. */
  take(max: number, signal: AbortSignal, waitMs?: number): Promise<StoredEvent[]>;
  ack(entries: readonly StoredEvent[]): Promise<void>;
  /** How many events are held and not acknowledged. */
  pending(): Promise<number>;
  /** Checks the store can be used (a server answers); rejects with StoreOpenError naming it. */
  open?(): Promise<void>;
  /**
   * The endpoint's delivery control as last saved (paused by an operator, or stopped by a
   * `410 Gone`), so that it survives a restart; undefined when delivery runs. A store that
   * does not implement these keeps the control in memory only (the endpoint does so).
   */
  loadControl?(): Promise<EndpointControl | undefined>;
  /** Saves the control (undefined clears it: delivery runs); durable when this resolves. */
  saveControl?(control: EndpointControl | undefined): Promise<void>;
  close(): Promise<void>;
}

/** Why an endpoint's delivery is stopped, kept by its store across restarts. */
export interface EndpointControl {
  /** `paused`: an operator paused it; `gone`: the endpoint answered 410 Gone. */
  state: 'paused' | 'gone';
  /** What stopped it, e.g. `HTTP 410 from https://hooks.example/registry` or `paused by an operator`. */
  reason: string;
  /** When, as an ISO 8601 time. */
  since: string;
}

/**
 * The store's data is damaged (a SQLite page that fails its checks, a Redis entry that is
 * not ours): delivery from it must stop rather than loop, and say so.
 */
export class StoreCorruptError extends Error {
  override readonly name = 'StoreCorruptError';
  constructor(
    readonly store: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${store}: the store is damaged (${reason}); delivery from it is stopped`, options);
  }
}

/** A store refused an event because it is full; the event is counted as dropped. */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
  constructor(
    readonly store: string,
    readonly limit: number,
  ) {
    super(`${store}: queue is full (${limit} events); event dropped`);
  }
}

/** A store could not be opened: the file or server is missing, unreadable or not what we expect. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  constructor(
    /** Which kind of store: `sqlite` or `redis`. */
    readonly kind: string,
    /** The file path or server address it was opening. */
    readonly location: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${kind} store at ${location}: ${reason}`, options);
  }
}

/** A store was used after `close()`. */
export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError';
  constructor(
    readonly store: string,
    readonly operation: string,
  ) {
    super(`${store}: cannot ${operation}, the store is closed`);
  }
}
