import http from 'node:http';
import type { Event } from '../model/event';
import type { AttemptDetail, HttpSinkHooks } from '../deliver/http-sink';
import type { EventOutcome, NotificationMetrics } from './metrics';
import type { QueueHooks } from '../deliver/queue';
import type { SpoolHooks } from '../stores/spooling-store';
import type { DeliveryRecorder } from './delivery-recorder';

/** One 10-second slice of an endpoint's recent attempts, for the console's charts. */
export interface RecentBucket {
  /** Start of the slice, seconds since the epoch. */
  t: number;
  /** Events delivered, refused (a status that is not success), and sent without an answer. */
  successes: number;
  failures: number;
  errors: number;
  /** Latency of the slice's attempts, 50th and 95th percentile, ms; null without attempts. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface EndpointStatsOptions {
  /** Where attempts and event states go (the console's attempt and event logs). */
  recorder?: DeliveryRecorder;
}

const BUCKET_MS = 10_000; // 10s
const BUCKETS = 60; // 10 minutes
/** Latencies a bucket keeps for its percentiles (a uniform sample beyond). */
const BUCKET_SAMPLES = 256;

interface Bucket {
  start: number;
  successes: number;
  failures: number;
  errors: number;
  attempts: number;
  latencies: number[];
}

/** Counters of one endpoint, named as in Distribution's expvar `EndpointMetrics`. */
export interface EndpointCounters {
  /** Events accepted and not yet delivered. */
  Pending: number;
  /** Events accepted. */
  Events: number;
  /** Events the endpoint took with a 2xx or 3xx. */
  Successes: number;
  /** Events the endpoint answered with another status (counted per attempt). */
  Failures: number;
  /** Events whose request got no answer (counted per attempt). */
  Errors: number;
  /** Events per answer, e.g. `{"200 OK": 12}`. */
  Statuses: Record<string, number>;
  /** Events refused because the store was full, or given up on with no dead-letter store. */
  Dropped: number;
  /** Events given up on after `maxretries`, or refused for good (a 4xx), kept in the dead-letter store. */
  DeadLettered: number;
  /** Events the store could not take in time, kept in the spool on disk until it could (`queue.spooldir`). */
  Spooled: number;
  /**
   * Delivery state: `closed` (delivering), `open` (backing off), `half-open` (probing),
   * `paused` (by an operator), `gone` (the endpoint answered 410), `stopped` (the store is
   * damaged). Events are queued in every state but `stopped`.
   */
  State: string;
}

/** Every value of `State`, as the metrics' state gauge lists them. */
export const ENDPOINT_STATES = ['closed', 'open', 'half-open', 'paused', 'gone', 'stopped'] as const;

function statusText(status: number): string {
  return `${status} ${http.STATUS_CODES[status] ?? ''}`.trimEnd();
}

/**
 * Turns one endpoint's queue and HTTP hooks into counters (for `/debug/vars`) and, when
 * given, Prometheus series.
 */
export class EndpointStats {
  readonly counters: EndpointCounters = {
    Pending: 0,
    Events: 0,
    Successes: 0,
    Failures: 0,
    Errors: 0,
    Statuses: {},
    Dropped: 0,
    DeadLettered: 0,
    Spooled: 0,
    State: 'closed',
  };

  /** The outcomes counted at least once (their Prometheus series exist). */
  readonly counted: Partial<Record<EventOutcome, true>> = {};

  /** Pending events by when they were accepted, oldest first, as [ms since the epoch, count]. */
  private readonly pendingSince: [number, number][] = [];
  /** Events just dead-lettered: their egress (leaving the queue) is not a delivery. */
  private readonly givenUp = new Set<string>();
  private readonly buckets: Bucket[] = [];
  private readonly recorder?: DeliveryRecorder;

  constructor(
    readonly endpoint: string,
    private readonly metrics?: NotificationMetrics,
    options: EndpointStatsOptions = {},
  ) {
    this.recorder = options.recorder;
    // Counters, pending and statuses go to the metrics when they are scraped.
    this.metrics?.watchCounters(this);
    this.metrics?.watchOldestPending(endpoint, () => this.oldestPendingAgeSeconds());
    this.setState('closed');
  }

  /** Seconds since the oldest pending event was accepted (as this process saw it), or null when none is pending. */
  oldestPendingAgeSeconds(now = Date.now()): number | null {
    const oldest = this.pendingSince[0];
    return oldest && this.counters.Pending > 0 ? Math.max(0, (now - oldest[0]) / 1000) : null;
  }

  /** The last 10 minutes in 10-second buckets, oldest first; quiet buckets included. */
  recent(now = Date.now()): RecentBucket[] {
    const last = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const byStart = new Map(this.buckets.map((b) => [b.start, b]));
    const out: RecentBucket[] = [];
    for (let start = last - (BUCKETS - 1) * BUCKET_MS; start <= last; start += BUCKET_MS) {
      const b = byStart.get(start);
      const sorted = b ? [...b.latencies].sort((x, y) => x - y) : [];
      const at = (p: number) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 10) / 10 : null);
      out.push({ t: start / 1000, successes: b?.successes ?? 0, failures: b?.failures ?? 0, errors: b?.errors ?? 0, p50Ms: at(0.5), p95Ms: at(0.95) });
    }
    return out;
  }

  /** Counts an attempt in the bucket of now, and hands it to the recorder. */
  private attempted(
    kind: 'successes' | 'failures' | 'errors',
    events: readonly Event[],
    ms: number,
    detail: AttemptDetail | undefined,
    status: number | null,
    err?: Error,
  ): void {
    const start = Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS;
    let b = this.buckets[this.buckets.length - 1];
    if (!b || b.start !== start) {
      b = { start, successes: 0, failures: 0, errors: 0, attempts: 0, latencies: [] };
      this.buckets.push(b);
      if (this.buckets.length > BUCKETS) this.buckets.shift();
    }
    b[kind] += events.length;
    b.attempts++;
    if (b.latencies.length < BUCKET_SAMPLES) b.latencies.push(ms);
    else {
      const i = Math.floor(Math.random() * b.attempts);
      if (i < BUCKET_SAMPLES) b.latencies[i] = ms;
    }
    this.recorder?.attempt({
      endpoint: this.endpoint,
      eventIds: events.map((e) => e.id),
      attempt: detail?.attempt ?? 1,
      status,
      error: err ? err.message : null,
      latencyMs: Math.round(ms * 10) / 10,
      response: detail?.response ?? null,
      test: false,
    });
  }

  /** Pending events left the queue: the oldest ones (a queue delivers in order). */
  private leftQueue(n: number): void {
    while (n > 0 && this.pendingSince.length > 0) {
      const head = this.pendingSince[0];
      const take = Math.min(n, head[1]);
      head[1] -= take;
      n -= take;
      if (head[1] === 0) this.pendingSince.shift();
    }
  }

  private count(type: EventOutcome, n: number): void {
    this.counters[type] += n;
    this.counted[type] = true;
  }

  private setPending(n: number): void {
    this.counters.Pending = Math.max(0, n);
  }

  /** Events already in a durable store when the endpoint starts. */
  backlog(n: number): void {
    this.setPending(this.counters.Pending + n);
    // Their age is not known here: they count from the start, ahead of what came since.
    if (n > 0) this.pendingSince.unshift([Date.now(), n]);
  }

  /**
   * Sets Pending to what the store counts now. Other replicas on a shared store deliver
   * events this process queued (and queue events this one will deliver), so counting
   * its own ingress and egress drifts; the store's count corrects it. Fewer than counted
   * left from the oldest end; more are counted from now.
   */
  resyncPending(n: number): void {
    const diff = n - this.counters.Pending;
    if (diff === 0) return;
    this.setPending(n);
    if (diff < 0) this.leftQueue(-diff);
    else this.pendingSince.push([Date.now(), diff]);
  }

  /** Hooks of a durable store's spool: events it kept on disk while the store could not take them. */
  spoolHooks(): SpoolHooks {
    return { spooled: (events) => this.count('Spooled', events.length) };
  }

  queueHooks(): QueueHooks {
    return {
      ingress: (events) => {
        this.count('Events', events.length);
        this.setPending(this.counters.Pending + events.length);
        // One entry per millisecond, however many requests came in it.
        const now = Date.now();
        const last = this.pendingSince[this.pendingSince.length - 1];
        if (last !== undefined && last[0] === now) last[1] += events.length;
        else this.pendingSince.push([now, events.length]);
        this.recorder?.events(this.endpoint, 'pending', events);
      },
      egress: (events) => {
        this.setPending(this.counters.Pending - events.length);
        this.leftQueue(events.length);
        if (!this.recorder) return;
        // Dead-lettered events leave the queue too, after they were recorded as such.
        const delivered = this.givenUp.size === 0 ? events : events.filter((e) => !this.givenUp.delete(e.id));
        this.recorder.events(this.endpoint, 'delivered', delivered);
      },
      dropped: (events) => this.count('Dropped', events.length),
      deadLettered: (events) => {
        this.count('DeadLettered', events.length);
        if (!this.recorder) return;
        for (const e of events) this.givenUp.add(e.id);
        this.recorder.events(this.endpoint, 'dead-lettered', events);
      },
    };
  }

  httpHooks(): HttpSinkHooks {
    const answered = (status: number, events: readonly Event[], ms: number) => {
      const code = statusText(status);
      this.counters.Statuses[code] = (this.counters.Statuses[code] ?? 0) + events.length;
      this.metrics?.latency.observe({ endpoint: this.endpoint }, ms / 1000);
    };
    return {
      success: (status, events, ms, detail) => {
        answered(status, events, ms);
        this.count('Successes', events.length);
        this.attempted('successes', events, ms, detail, status);
      },
      failure: (status, events, ms, detail) => {
        answered(status, events, ms);
        this.count('Failures', events.length);
        this.attempted('failures', events, ms, detail, status);
      },
      error: (err, events, ms, detail) => {
        this.metrics?.latency.observe({ endpoint: this.endpoint }, ms / 1000);
        this.count('Errors', events.length);
        this.attempted('errors', events, ms, detail, null, err);
      },
    };
  }

  /** Records a change of delivery state: one of ENDPOINT_STATES. */
  setState(state: string): void {
    this.counters.State = state;
    if (!this.metrics) return;
    for (const s of ENDPOINT_STATES) this.metrics.state.set({ endpoint: this.endpoint, state: s }, s === state ? 1 : 0);
  }

  snapshot(): EndpointCounters {
    return { ...this.counters, Statuses: { ...this.counters.Statuses } };
  }
}
