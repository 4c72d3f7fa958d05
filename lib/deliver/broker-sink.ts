import type { EnvelopeVersion, Event } from '../model/event';
import { brokerMessageEncoder, type BrokerBinding, type BrokerMessage, type MessageFormat } from '../codec/cloudevents-bindings';
import { DEFAULTS } from '../config/defaults';
import { parseEndpointUrl } from './endpoint-url';
import type { HttpSinkHooks } from './http-sink';
import { ClosedSinkError, type Sink } from './sink';

/**
 * What a broker sink reports about each write, with the HTTP sink's hooks so that the
 * same stats and attempt log serve both: a write every message of which the broker
 * confirmed is a `success` with status 200; anything else (no connection, a refusal, no
 * confirmation in time) an `error`.
 */
export type BrokerSinkHooks = HttpSinkHooks;

/** The status a confirmed write is reported with. */
export const CONFIRMED_STATUS = 200;

export interface BrokerSinkOptions {
  /**
   * Deadline in ms for one write (`timeout`): connecting when there is no connection,
   * publishing every event and receiving every confirmation; 0 means none. @default 1000 (1s)
   */
  timeoutMs?: number;
  /** Static headers added to every message (NATS headers, the AMQP headers table, MQTT 5 user properties). */
  headers?: Record<string, readonly string[]>;
  /** The message format when no `encode` is given. @default 'distribution' */
  format?: MessageFormat;
  /** Envelope generation of the `distribution` format. @default 'v1' */
  version?: EnvelopeVersion;
  /** Turns one event into a message; replaces `format`. */
  encode?(event: Event): BrokerMessage;
  hooks?: BrokerSinkHooks;
}

/** A write to a broker failed: no connection, a refusal, or no confirmation in time. */
export class BrokerDeliveryError extends Error {
  override readonly name = 'BrokerDeliveryError';
  constructor(
    /** The broker URL as shown: credentials redacted. */
    readonly url: string,
    override readonly cause: Error,
  ) {
    super(`publish to ${url}: ${cause.message}`);
  }
}

/** No confirmation came within the write's deadline. */
export class BrokerTimeoutError extends Error {
  override readonly name = 'BrokerTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no confirmation within ${timeoutMs}ms`);
  }
}

/** A connection this sink owns, and how to let it go. */
export interface BrokerConnection {
  close(): Promise<void>;
}

/** One event ready to publish: the event (its id, its route) and its message. */
export interface Outgoing {
  event: Event;
  message: BrokerMessage;
  /** The static headers and the message's own properties, the message's winning. */
  properties: Record<string, string | string[]>;
}

/**
 * What the NATS, AMQP and MQTT sinks share. Each event is one message; a write publishes
 * its events in order over one connection and resolves once the broker confirmed every
 * one. A write that fails rejects, and the retrying sink above writes the same events
 * again: the confirmed events at its head are not published again, but one confirmed
 * after an unconfirmed one may be, so a consumer can see an event twice, always with the
 * same message id (the event id), by which it drops duplicates.
 *
 * The connection is made by the first write and kept; when the broker goes away it is
 * dropped, and the next write connects again. `close` releases it.
 */
export abstract class BrokerSink<C extends BrokerConnection> implements Sink {
  /** The URL as messages show it: `user:password@` and secret-looking query values redacted. */
  readonly url: string;
  protected readonly timeoutMs: number;
  private readonly hooks: BrokerSinkHooks;
  private readonly encode: (event: Event) => BrokerMessage;
  private readonly staticProperties: Record<string, string | string[]>;
  private connection?: Promise<C>;
  private closed = false;
  /** Events at the head of the last failed write that the broker confirmed. */
  private progress?: { events: readonly Event[]; confirmed: number };

  constructor(
    /** The URL as configured, credentials included: what the client connects with. */
    protected readonly target: string,
    binding: BrokerBinding,
    options: BrokerSinkOptions,
  ) {
    this.url = parseEndpointUrl(target).shown;
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.endpoint.timeoutMs;
    this.hooks = options.hooks ?? {};
    this.encode = options.encode ?? brokerMessageEncoder(binding, options.format ?? 'distribution', options.version);
    this.staticProperties = {};
    for (const [name, values] of Object.entries(options.headers ?? {})) {
      this.staticProperties[name] = values.length === 1 ? values[0] : [...values];
    }
  }

  /** Connects to the broker; rejects when it cannot within `deadline` (a `performance.now()` instant). */
  protected abstract open(deadline: number): Promise<C>;

  /**
   * Publishes the messages in order on the connection; each promise settles when the
   * broker confirmed (or refused) its message.
   */
  protected abstract publish(connection: C, outgoing: readonly Outgoing[], deadline: number): Promise<void>[];

  /** Called by subclasses when the client reports the connection gone: the next write connects anew. */
  protected lost(connection: C): void {
    const current = this.connection;
    if (!current) return;
    current.then(
      (c) => {
        if (c === connection && this.connection === current) this.connection = undefined;
      },
      () => undefined,
    );
  }

  async write(events: readonly Event[]): Promise<void> {
    if (this.closed) throw new ClosedSinkError(`broker sink ${this.url}`);
    const started = performance.now();
    const deadline = this.timeoutMs > 0 ? started + this.timeoutMs : Infinity;
    const progress = this.progress?.events === events ? this.progress : { events, confirmed: 0 };
    this.progress = undefined;
    let connection: C | undefined;
    let confirmed: boolean[] = [];
    try {
      await withDeadline(
        (async () => {
          connection = await this.connect(deadline);
          const outgoing = events.slice(progress.confirmed).map((event) => this.outgoing(event));
          confirmed = new Array<boolean>(outgoing.length).fill(false);
          const flags = confirmed;
          await Promise.all(this.publish(connection, outgoing, deadline).map((p, i) => p.then(() => void (flags[i] = true))));
        })(),
        deadline,
        this.timeoutMs,
      );
    } catch (err) {
      // A connection that timed out or failed a publish may be half dead: start afresh.
      if (connection) this.discard(connection);
      if (this.closed) throw new ClosedSinkError(`broker sink ${this.url}`);
      const error = err instanceof BrokerDeliveryError ? err : new BrokerDeliveryError(this.url, err as Error);
      const head = confirmed.indexOf(false);
      progress.confirmed += head < 0 ? confirmed.length : head;
      if (progress.confirmed > 0) this.progress = progress;
      this.hooks.error?.(error, events, performance.now() - started);
      throw error;
    }
    this.hooks.success?.(CONFIRMED_STATUS, events, performance.now() - started);
  }

  private outgoing(event: Event): Outgoing {
    const message = this.encode(event);
    return { event, message, properties: { ...this.staticProperties, ...message.properties } };
  }

  private connect(deadline: number): Promise<C> {
    if (!this.connection) {
      const opening = this.open(deadline);
      this.connection = opening;
      opening.catch(() => {
        if (this.connection === opening) this.connection = undefined;
      });
    }
    return this.connection;
  }

  /** Forgets a connection and closes it in the background. */
  private discard(connection: C): void {
    this.lost(connection);
    this.connection = undefined;
    connection.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const current = this.connection;
    this.connection = undefined;
    if (!current) return;
    const connection = await current.catch(() => undefined);
    if (!connection) return;
    // Never hangs: a broker that does not answer the goodbye is left behind.
    await withDeadline(connection.close(), performance.now() + Math.max(this.timeoutMs, 1000), this.timeoutMs).catch(() => undefined);
  }
}

/** The promise, or a BrokerTimeoutError once `deadline` (a `performance.now()` instant) passes. */
export function withDeadline<T>(promise: Promise<T>, deadline: number, timeoutMs: number): Promise<T> {
  if (deadline === Infinity) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BrokerTimeoutError(timeoutMs)), Math.max(0, deadline - performance.now()));
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Milliseconds left before `deadline`, at least 1 (clients treat 0 as "no limit"). */
export function remainingMs(deadline: number, fallback: number): number {
  return deadline === Infinity ? fallback : Math.max(1, Math.round(deadline - performance.now()));
}
