import http from 'node:http';
import type { Event } from '../model/event';
import type { HttpSinkHooks } from '../deliver/http-sink';
import type { NotificationMetrics } from './metrics';
import type { QueueHooks } from '../deliver/queue';

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
  /** Events refused because the store was full or the endpoint is gone, or given up on with no dead-letter store. */
  Dropped: number;
  /** Events given up on after `maxretries`, kept in the dead-letter store. */
  DeadLettered: number;
  /** Delivery state: `closed` (delivering), `open` (backing off), `half-open` (probing), `gone` (410). */
  State: string;
}

const ENDPOINT_STATES = ['closed', 'open', 'half-open', 'gone'];

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
    State: 'closed',
  };

  constructor(
    readonly endpoint: string,
    private readonly metrics?: NotificationMetrics,
  ) {
    this.metrics?.pending.set({ endpoint }, 0);
    this.setState('closed');
  }

  private count(type: 'Events' | 'Successes' | 'Failures' | 'Errors' | 'Dropped' | 'DeadLettered', n: number): void {
    this.counters[type] += n;
    this.metrics?.events.inc({ type, endpoint: this.endpoint }, n);
  }

  private setPending(n: number): void {
    this.counters.Pending = Math.max(0, n);
    this.metrics?.pending.set({ endpoint: this.endpoint }, this.counters.Pending);
  }

  /** Events already in a durable store when the endpoint starts. */
  backlog(n: number): void {
    this.setPending(this.counters.Pending + n);
  }

  queueHooks(): QueueHooks {
    return {
      ingress: (events) => {
        this.count('Events', events.length);
        this.setPending(this.counters.Pending + events.length);
      },
      egress: (events) => this.setPending(this.counters.Pending - events.length),
      dropped: (events) => this.count('Dropped', events.length),
      deadLettered: (events) => this.count('DeadLettered', events.length),
    };
  }

  httpHooks(): HttpSinkHooks {
    const answered = (status: number, events: readonly Event[], ms: number) => {
      const code = statusText(status);
      this.counters.Statuses[code] = (this.counters.Statuses[code] ?? 0) + events.length;
      this.metrics?.statuses.inc({ code, endpoint: this.endpoint }, events.length);
      this.metrics?.latency.observe({ endpoint: this.endpoint }, ms / 1000);
    };
    return {
      success: (status, events, ms) => {
        answered(status, events, ms);
        this.count('Successes', events.length);
      },
      failure: (status, events, ms) => {
        answered(status, events, ms);
        this.count('Failures', events.length);
      },
      error: (_err, events, ms) => {
        this.metrics?.latency.observe({ endpoint: this.endpoint }, ms / 1000);
        this.count('Errors', events.length);
      },
    };
  }

  /** Records a change of delivery state: closed, open, half-open or gone. */
  setState(state: string): void {
    this.counters.State = state;
    if (!this.metrics) return;
    for (const s of ENDPOINT_STATES) this.metrics.state.set({ endpoint: this.endpoint, state: s }, s === state ? 1 : 0);
  }

  snapshot(): EndpointCounters {
    return { ...this.counters, Statuses: { ...this.counters.Statuses } };
  }
}
