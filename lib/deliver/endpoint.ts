import type https from 'node:https';
import type { Event } from '../model/event';
import { normalizeEndpoint, type EndpointConfig, type EndpointInit } from '../config/normalize';
import { Filter } from './filter';
import { payloadEncoder, type EncodedRequest } from '../codec/payload';
import { parseEndpointUrl } from './endpoint-url';
import { HttpSink, HttpStatusError } from './http-sink';
import { Queue } from './queue';
import { Breaker } from './breaker';
import { RetryingSink } from './retrying-sink';
import type { Sink } from './sink';
import { EndpointStats } from '../inspect/endpoint-stats';
import { webhookSigner } from '../codec/signing';
import type { QueueStore } from '../stores/queue-store';
import type { DeadLetter, DeadLetterStore } from '../stores/dead-letter-store';
import { MemoryDeadLetterStore } from '../stores/memory-dead-letters';

export interface EndpointOptions {
  /** Where pending events live. @default a MemoryStore */
  store?: QueueStore;
  /** Where events given up on after `maxRetries` go. @default a MemoryDeadLetterStore */
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
}

/** An endpoint answered `410 Gone`: it stops delivering until it is configured again. */
const isGone = (err: Error) => err instanceof HttpStatusError && err.status === 410;

/**
 * One webhook endpoint: Filter -> Queue -> RetryingSink -> HttpSink, read top to bottom
 * in the constructor. Writes return once events are queued; delivery happens behind.
 */
export class Endpoint implements Sink {
  readonly config: EndpointConfig;
  readonly stats: EndpointStats;
  readonly queue: Queue;
  readonly deadLetters: DeadLetterStore;
  private readonly head: Sink;
  /** Why delivery stopped for good (the endpoint answered 410 Gone). */
  gone?: Error;
  private readonly dropped: (events: readonly Event[], reason: Error) => void;

  constructor(init: EndpointInit, options: EndpointOptions = {}) {
    // The one normaliser: defaults filled (an explicit undefined too), every value checked.
    this.config = normalizeEndpoint(init, `endpoint ${JSON.stringify(init.name)}`);
    const c = this.config;
    const onError = options.onError ?? ((err: Error) => console.error(`notifications: endpoint ${c.name}: ${err.message}`));
    this.stats = options.stats ?? new EndpointStats(c.name);

    const http = new HttpSink(c.url, {
      timeoutMs: c.timeoutMs,
      headers: c.headers,
      httpsAgent: options.httpsAgent,
      encode: options.encode ?? payloadEncoder(c.format, c.envelope),
      sign: c.secrets.length > 0 ? webhookSigner(c.secrets) : undefined,
      hooks: this.stats.httpHooks(),
    });
    const breaker = new Breaker({
      threshold: c.threshold,
      backoffMs: c.backoffMs,
      maxBackoffMs: c.maxBackoffMs,
      jitter: c.jitter,
      onStateChange: (state) => this.stats.setState(state),
    });
    const retrying = new RetryingSink(http, breaker, { maxRetries: c.maxRetries, isPermanent: isGone });
    const queueHooks = this.stats.queueHooks();
    this.dropped = (events, reason) => queueHooks.dropped?.(events, reason);
    this.deadLetters = options.deadLetters ?? new MemoryDeadLetterStore();
    this.queue = new Queue(retrying, {
      store: options.store,
      deadLetters: this.deadLetters,
      maxEvents: c.maxEvents,
      lingerMs: c.lingerMs,
      drainTimeoutMs: options.drainTimeoutMs,
      hooks: queueHooks,
      onError,
      isFatal: isGone,
      onHalt: (err) => {
        this.gone = err;
        this.stats.setState('gone');
        onError(new Error(`${err.message}: endpoint is gone; delivery stopped, pending events kept in the store`));
      },
    });
    this.head = new Filter(this.queue, {
      ignore: { ...c.ignore, mediaTypes: [...c.ignore.mediaTypes, ...c.ignoredMediaTypes] },
      include: c.include,
    });
  }

  get name(): string {
    return this.config.name;
  }

  get url(): string {
    return this.config.url;
  }

  /** The URL as stats and logs show it, credentials redacted. */
  get shownUrl(): string {
    return parseEndpointUrl(this.config.url).shown;
  }

  /**
   * Checks the store is usable (rejects with StoreOpenError naming it) and counts the
   * events a durable store already holds, so stats show the backlog after a restart.
   */
  async start(): Promise<void> {
    await this.queue.store.open?.();
    this.stats.backlog(await this.queue.pending());
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
    const events = await this.deadLetters.replay(ids);
    if (events.length > 0) await this.queue.write(events);
    return events;
  }

  async write(events: readonly Event[]): Promise<void> {
    if (this.gone) {
      this.dropped(events, this.gone);
      return;
    }
    return this.head.write(events);
  }

  /** Stops taking events, delivers for up to the drain timeout, then cancels retries. */
  close(): Promise<void> {
    return this.head.close();
  }
}
