import { STATUS_CODES } from 'node:http';
import type https from 'node:https';
import type { Event } from '../model/event';
import { DEFAULTS } from '../config/defaults';
import { normalizeEndpoint, type EndpointConfig, type EndpointInit } from '../config/normalize';
import { Filter } from './filter';
import { payloadEncoder, type EncodedRequest } from '../codec/payload';
import { HttpDeliveryError, HttpStatusError, type HttpSinkOptions } from './http-sink';
import { createDestinationSink, type DestinationSink } from './destination';
import { HttpTimeoutError } from './http-transport';
import { Queue } from './queue';
import { Breaker } from './breaker';
import { RetryingSink } from './retrying-sink';
import { ClosedSinkError, sleep, type Sink } from './sink';
import { EndpointStats } from '../inspect/endpoint-stats';
import { webhookSigner } from '../codec/signing';
import { StoreCorruptError, type EndpointControl, type QueueStore } from '../stores/queue-store';
import { MemoryStore } from '../stores/memory-store';
import { replayDeadLetters, type DeadLetter, type DeadLetterStore } from '../stores/dead-letter-store';
import { MemoryDeadLetterStore } from '../stores/memory-dead-letters';

export interface EndpointOptions {
  /** Where pending events live. @default a MemoryStore */
  store?: QueueStore;
  /** Where events given up on after `maxRetries`, or refused for good (a 4xx), go. @default a MemoryDeadLetterStore */
  deadLetters?: DeadLetterStore;
  /** Counters and metrics this endpoint reports to. @default fresh counters, no metrics */
  stats?: EndpointStats;
  /** On shutdown, how long to keep delivering, in ms. @default 2000 (2s) */
  drainTimeoutMs?: number;
  /** Agent for `https:` endpoints, e.g. one trusting a private CA. */
  httpsAgent?: https.Agent;
  /** Replaces the configured `format` with an encoding of one's own. */
  encode?(events: readonly Event[]): EncodedRequest;
  /** Where delivery problems are reported. @default console.error */
  onError?(err: Error): void;
  /** Failed attempts are reported at most once per this, with a count of those not shown. @default 10000 (10s) */
  failureLogIntervalMs?: number;
}

/** An endpoint answered `410 Gone`: it stops delivering, durably, until it is resumed. */
const isGone = (err: Error) => err instanceof HttpStatusError && err.status === 410;

/**
 * An answer that refuses these events for good: any 4xx but 408 (timeout) and 429 (too
 * many requests), which ask to try again, and 410, which is about the endpoint. Sending
 * the same bytes again would get the same answer.
 */
const isRejected = (err: Error) => err instanceof HttpStatusError && err.status >= 400 && err.status < 500 && ![408, 410, 429].includes(err.status);

/** What a dead letter says of an answer: `HTTP 413 Payload Too Large from <url>`, credentials redacted. */
const reasonOf = (err: Error) => (err instanceof HttpStatusError ? `HTTP ${err.status} ${STATUS_CODES[err.status] ?? ''}`.trimEnd() + ` from ${err.url}` : err.message);

/** A request of several events timed out: the receiver may handle them one by one. */
const isTimeout = (err: Error) => err instanceof HttpDeliveryError && err.cause instanceof HttpTimeoutError;

/** How long requests stay shorter after a timeout cut them, before they may carry a whole write again. */
const SHRINK_HOLD_MS = 60_000;

/**
 * Between the retrying sink and the HTTP sink when requests carry several events. A
 * receiver that handles events one at a time can take longer than `timeout` over a batch
 * it would take one by one: when a request of several events times out, later requests
 * carry half as many (down to one) for a minute. A write retried after a failure, or
 * split by the queue after a refusal, skips its leading events that requests of the
 * failed write already delivered, so it resends nothing the endpoint took.
 */
class ShrinkOnTimeout implements Sink {
  private limit = Infinity;
  private shrunkAt = 0;
  /**
   * Events the endpoint took in a write that then failed: the next write may start with
   * them. Undefined while there are none, as after every write that went whole: a write
   * of one request costs no bookkeeping per event.
   */
  private taken?: WeakSet<Event>;

  constructor(private readonly dst: Sink) {}

  async write(events: readonly Event[]): Promise<void> {
    if (this.limit !== Infinity && performance.now() - this.shrunkAt > SHRINK_HOLD_MS) this.limit = Infinity;
    let sent = 0;
    const taken = this.taken;
    if (taken !== undefined) {
      while (sent < events.length && taken.has(events[sent])) sent++;
      if (sent === 0) this.taken = undefined; // not the rest of the failed write: forget it
    }
    while (sent < events.length) {
      // The very array when it goes whole: the body measured or prepared for it is reused.
      const part = sent === 0 && events.length <= this.limit ? events : events.slice(sent, sent + this.limit);
      try {
        await this.dst.write(part);
      } catch (err) {
        if (part.length > 1 && isTimeout(err as Error)) {
          this.limit = Math.ceil(part.length / 2);
          this.shrunkAt = performance.now();
        }
        // What went before this request was taken: a retry of this write skips it.
        if (sent > 0) {
          this.taken ??= new WeakSet();
          for (let i = 0; i < sent; i++) this.taken.add(events[i]);
        }
        throw err;
      }
      sent += part.length;
    }
    // Delivered, all of it; what the failed write took beyond it is still to be skipped.
    if (this.taken !== undefined) for (const event of events) this.taken.delete(event);
  }

  prepare(events: readonly Event[]): void {
    if (events.length <= this.limit) this.dst.prepare?.(events);
  }

  close(): Promise<void> {
    return this.dst.close();
  }
}

/**
 * Reports failed attempts (an answer that is not success, no answer) to `report`, at most
 * one line per `intervalMs`, counting the failures it did not show: an endpoint that is
 * down for an hour makes a few hundred lines, not a million. Messages carry the URL as
 * shown (credentials redacted).
 */
function failureLog(report: (err: Error) => void, intervalMs: number) {
  let lastAt = -Infinity;
  let unshown = 0;
  return (attempt: number, err: Error, waitMs: number) => {
    const now = performance.now();
    if (now - lastAt < intervalMs) {
      unshown++;
      return;
    }
    const more = unshown > 0 ? ` (${unshown} more failed attempts since the last report)` : '';
    report(new Error(`delivery attempt ${attempt} failed: ${err.message}; next attempt in ${Math.round(waitMs)}ms${more}`));
    lastAt = now;
    unshown = 0;
  };
}

/**
 * One webhook endpoint: Filter -> Queue -> RetryingSink -> HttpSink, or a NATS, AMQP or MQTT sink by the URL's scheme (with requests cut
 * shorter after a timeout when they carry several events), read top to bottom
 * in the constructor. Writes return once events are queued; delivery happens behind.
 *
 * Delivery can be paused and resumed (by an operator), and stops by itself on `410 Gone`;
 * either is saved in the store when it can keep it, so it holds across restarts, and
 * events keep being queued meanwhile.
 */
export class Endpoint implements Sink {
  readonly config: EndpointConfig;
  readonly stats: EndpointStats;
  readonly queue: Queue;
  readonly deadLetters: DeadLetterStore;
  private readonly head: Sink;
  private readonly http: DestinationSink;
  private readonly httpOptions: HttpSinkOptions;
  /** Recounts Pending from the store while started. */
  private resync?: NodeJS.Timeout;
  /** The HTTP sink of `deliverNow`, made on first use: no queue, retries or stats. */
  private direct?: DestinationSink;
  private readonly breaker: Breaker;
  private readonly retrying: RetryingSink;
  private readonly onError: (err: Error) => void;
  /** Why delivery is stopped by an operator or a 410, as saved in the store. */
  private stopped?: EndpointControl;
  /** The store is damaged: delivery halted, writes refused, until `resume()`. */
  private broken?: Error;
  /** The saved control has been read and applied (delivery waits for it). */
  private readonly restored: Promise<void>;
  /** Control changes, one after another, after `restored`. */
  private controlChanges: Promise<unknown>;
  private readonly closing = new AbortController();
  private closed?: Promise<void>;

  constructor(init: EndpointInit, options: EndpointOptions = {}) {
    // The one normaliser: defaults filled (an explicit undefined too), every value checked.
    this.config = normalizeEndpoint(init, `endpoint ${JSON.stringify(init.name)}`);
    const c = this.config;
    const onError = options.onError ?? ((err: Error) => console.error(`notifications: endpoint ${c.name}: ${err.message}`));
    this.stats = options.stats ?? new EndpointStats(c.name);

    // The queue measures each body of several events against maxBytes; the sink then sends
    // that very body rather than encoding the events again.
    const encode = options.encode ?? payloadEncoder(c.format, c.envelope);
    const measured = new WeakMap<readonly Event[], EncodedRequest>();
    const measure = (events: readonly Event[]) => {
      const encoded = encode(events);
      measured.set(events, encoded);
      return Buffer.byteLength(encoded.body);
    };
    this.httpOptions = {
      timeoutMs: c.timeoutMs,
      headers: c.headers,
      httpsAgent: options.httpsAgent,
      encode,
      sign: c.secrets.length > 0 ? webhookSigner(c.secrets) : undefined,
    };
    // The URL's scheme picks the transport: HTTP POSTs, or a NATS, AMQP or MQTT broker.
    const http = createDestinationSink(c, {
      ...this.httpOptions,
      encode: (events) => measured.get(events) ?? encode(events),
      hooks: this.stats.httpHooks(),
    });
    this.http = http;
    this.onError = onError;
    this.breaker = new Breaker({
      threshold: c.threshold,
      backoffMs: c.backoffMs,
      maxBackoffMs: c.maxBackoffMs,
      jitter: c.jitter,
      // While paused, gone or halted, stats show that rather than the breaker.
      onStateChange: (state) => {
        if (!this.stopped && !this.broken) this.stats.setState(state);
      },
    });
    const below = c.maxEvents > 1 ? new ShrinkOnTimeout(http) : http;
    this.retrying = new RetryingSink(below, this.breaker, {
      maxRetries: c.maxRetries,
      isPermanent: (err) => isGone(err) || isRejected(err),
      maxRetryAfterMs: Math.max(c.maxBackoffMs, DEFAULTS.http.maxRetryAfterMs),
      onRetry: failureLog(onError, options.failureLogIntervalMs ?? DEFAULTS.http.failureLogIntervalMs),
    });
    this.deadLetters = options.deadLetters ?? new MemoryDeadLetterStore();
    this.queue = new Queue(this.retrying, {
      store: options.store ?? new MemoryStore(),
      deadLetters: this.deadLetters,
      maxEvents: c.maxEvents,
      maxBytes: c.maxBytes,
      measure,
      lingerMs: c.lingerMs,
      drainTimeoutMs: options.drainTimeoutMs,
      hooks: this.stats.queueHooks(),
      onError,
      isRejected,
      reason: reasonOf,
      isFatal: isGone,
      onHalt: (err) => this.halted(err),
      // Delivery starts once the saved control says it is not paused or gone.
      suspended: true,
    });
    this.head = new Filter(this.queue, {
      ignore: { ...c.ignore, mediaTypes: [...c.ignore.mediaTypes, ...c.ignoredMediaTypes] },
      include: c.include,
    });
    this.restored = this.restore();
    this.controlChanges = this.restored;
  }

  get name(): string {
    return this.config.name;
  }

  get url(): string {
    return this.config.url;
  }

  /** The URL as stats and logs show it, credentials redacted. */
  get shownUrl(): string {
    return this.http.url;
  }

  /**
   * Checks the store is usable (rejects with StoreOpenError naming it), applies the
   * control it saved (an endpoint paused or gone stays so), and counts the events a
   * durable store already holds, so stats show the backlog after a restart.
   */
  async start(): Promise<void> {
    await this.queue.store.open?.();
    await this.restored;
    this.stats.backlog(await this.queue.pending());
    // A shared store (Redis, several replicas) changes under this process: recount now and then.
    this.resync = setInterval(() => {
      this.queue.pending().then((n) => this.stats.resyncPending(n), () => undefined);
    }, DEFAULTS.stats.pendingResyncMs);
    this.resync.unref();
  }

  /** Why delivery is stopped (`paused` by an operator, or `gone` after a 410), or undefined while it runs. */
  get control(): EndpointControl | undefined {
    return this.stopped && { ...this.stopped };
  }

  /**
   * Stops delivery after the write in flight, and saves that in the store so a restart
   * keeps it paused. Events are still accepted and queued. Resolves once the pause is
   * saved and no request is on its way; rejects, changing nothing, when the store cannot
   * save it. Pausing a paused endpoint does nothing; pausing a gone one marks it paused.
   */
  pause(reason = 'paused by an operator'): Promise<void> {
    if (this.closing.signal.aborted) return Promise.reject(new ClosedSinkError(`endpoint ${this.name}`));
    return this.serially(async () => {
      if (this.stopped?.state === 'paused') return;
      const control: EndpointControl = { state: 'paused', reason, since: new Date().toISOString() };
      await this.queue.store.saveControl?.(control);
      await this.stop(control);
    });
  }

  /**
   * Delivers again, from the oldest pending event, after a pause, a 410 or a damaged
   * store; clears the control saved in the store. Rejects, changing nothing, when the
   * store cannot clear it. Resuming an endpoint that delivers does nothing.
   */
  resume(): Promise<void> {
    if (this.closing.signal.aborted) return Promise.reject(new ClosedSinkError(`endpoint ${this.name}`));
    return this.serially(async () => {
      if (!this.stopped && !this.broken && this.queue.delivering) return;
      if (this.stopped) await this.queue.store.saveControl?.(undefined);
      this.stopped = undefined;
      this.broken = undefined;
      this.showState();
      await this.queue.resume();
    });
  }

  /**
   * Sends these events at once, straight to the endpoint (a test event): the same body,
   * headers and signatures as delivery, but no queue, retries, breaker, stats or store,
   * and whether the endpoint is paused or not. Resolves when the endpoint accepted them;
   * rejects with the delivery error (`HttpStatusError`, `HttpDeliveryError`) otherwise.
   */
  async deliverNow(events: readonly Event[]): Promise<void> {
    if (this.closing.signal.aborted) throw new ClosedSinkError(`endpoint ${this.name}`);
    this.direct ??= createDestinationSink(this.config, this.httpOptions);
    await this.direct.write(events);
  }

  /** Events given up on after `maxRetries`, oldest first. */
  listDeadLetters(limit?: number): Promise<DeadLetter[]> {
    return this.deadLetters.list({ limit });
  }

  /**
   * Sends dead letters again: takes them out of the dead-letter store (those with these
   * event ids, or all) and queues them, ids unchanged, at the end of the queue.
   * Resolves to the events queued.
   */
  async replayDeadLetters(ids?: readonly string[]): Promise<Event[]> {
    return replayDeadLetters(this.deadLetters, (events) => this.queue.write(events), ids);
  }

  /**
   * Queues events (filtered) for delivery, also while delivery is paused or gone. Rejects
   * with the `StoreCorruptError` that stopped delivery while the store is damaged.
   */
  write(events: readonly Event[]): Promise<void> {
    return this.head.write(events);
  }

  /** Stops taking events, delivers for up to the drain timeout (unless paused), then cancels retries. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      clearInterval(this.resync);
      await this.restored;
      await this.head.close();
      await this.direct?.close();
    })();
    return this.closed;
  }

  /** Runs control changes one at a time, after the saved control was applied. */
  private serially(change: () => Promise<void>): Promise<void> {
    const done = this.controlChanges.then(change);
    this.controlChanges = done.catch(() => undefined);
    return done;
  }

  /** Stats show the most telling state: a damaged store, then a pause or 410, then the breaker's. */
  private showState(): void {
    this.stats.setState(this.broken ? 'stopped' : (this.stopped?.state ?? this.breaker.state()));
  }

  /** Stops delivery for this control: stats show it, and the write in flight is the last. */
  private async stop(control: EndpointControl): Promise<void> {
    this.stopped = control;
    this.showState();
    const suspended = this.queue.suspend();
    this.retrying.interrupt(); // a retry waiting for its backoff ends now
    await suspended;
  }

  /**
   * Reads the control the store saved and applies it: delivery starts unless it says
   * paused or gone. While the store cannot be read, delivery waits and it asks again
   * (said once); a damaged control record is reported and delivery runs.
   */
  private async restore(): Promise<void> {
    const store = this.queue.store;
    for (let said = false; ; ) {
      let control: EndpointControl | undefined;
      let opened = false;
      try {
        await store.open?.();
        opened = true;
        control = await store.loadControl?.();
      } catch (err) {
        if (!(err instanceof StoreCorruptError)) {
          if (this.closing.signal.aborted) return;
          // A store that does not open is start()'s to report.
          if (opened && !said) this.onError(new Error(`${(err as Error).message}; delivery waits until the store can say whether it is paused`, { cause: err }));
          said ||= opened;
          await sleep(DEFAULTS.stores.takeWaitMs, this.closing.signal, `endpoint ${this.name}`).catch(() => undefined);
          continue;
        }
        this.onError(err);
      }
      if (control) await this.stop(control);
      else await this.queue.resume();
      return;
    }
  }

  /** The queue stopped by itself: the endpoint answered 410, or the store is damaged. */
  private halted(err: Error): void {
    if (err instanceof StoreCorruptError) {
      this.broken = err;
      this.showState();
      this.onError(new Error(`${err.message}; events for this endpoint are refused until it is resumed`, { cause: err }));
      return;
    }
    this.onError(new Error(`${err.message}: endpoint is gone; delivery stopped until it is resumed, events are kept queued`, { cause: err }));
    const control: EndpointControl = { state: 'gone', reason: reasonOf(err), since: new Date().toISOString() };
    this.stopped = control;
    this.showState();
    void this.serially(async () => {
      if (this.stopped !== control) return; // an operator paused or resumed it meanwhile
      await this.queue.store.saveControl?.(control);
    }).catch((saveErr: Error) => this.onError(new Error(`${saveErr.message}; the endpoint is gone until resumed, but a restart will try it again`, { cause: saveErr })));
  }
}
