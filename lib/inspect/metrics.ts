import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EndpointCounters } from './endpoint-stats';

/** The outcomes of `registry_notifications_events_total`, as its `type` label names them. */
export type EventOutcome = 'Events' | 'Successes' | 'Failures' | 'Errors' | 'Dropped' | 'DeadLettered' | 'Spooled';
const OUTCOMES: readonly EventOutcome[] = ['Events', 'Successes', 'Failures', 'Errors', 'Dropped', 'DeadLettered', 'Spooled'];

/**
 * What one endpoint's stats count, read at each scrape: its counters, and which outcomes
 * it has counted at all (a series exists from the first count, even of none).
 */
export interface CountedEndpoint {
  readonly endpoint: string;
  readonly counters: EndpointCounters;
  readonly counted: Readonly<Partial<Record<EventOutcome, true>>>;
}

/** What a scrape has already handed prom-client of one endpoint's counters. */
interface Reported {
  events: Partial<Record<EventOutcome, number>>;
  statuses: Record<string, number>;
}

/**
 * The Prometheus series of every endpoint, registered on the caller's registry (never
 * the global one). Names follow Distribution 3's `registry_notifications_*` series.
 */
export class NotificationMetrics {
  readonly events: Counter<'type' | 'endpoint'>;
  readonly pending: Gauge<'endpoint'>;
  readonly statuses: Counter<'code' | 'endpoint'>;
  readonly latency: Histogram<'endpoint'>;
  readonly state: Gauge<'endpoint' | 'state'>;
  readonly oldestPending: Gauge<'endpoint'>;
  /** Per endpoint, the age of its oldest pending event, read when the registry is scraped. */
  private readonly oldestPendingOf = new Map<string, () => number | null>();
  /**
   * The endpoints' counters, read when the registry is scraped: a request counts in plain
   * numbers, with no label set hashed for it. Counters advance by what was counted since
   * the last scrape.
   */
  private readonly counted = new Map<CountedEndpoint, Reported>();

  constructor(registry: Registry) {
    const registers = [registry];
    const counted = this.counted;
    this.events = new Counter({
      name: 'registry_notifications_events_total',
      help: 'Events by outcome: Events (accepted), Successes, Failures, Errors, Dropped, DeadLettered, Spooled (kept on disk while the store could not take them).',
      labelNames: ['type', 'endpoint'],
      registers,
      collect() {
        for (const [source, reported] of counted) {
          for (const type of OUTCOMES) {
            if (!source.counted[type]) continue;
            const value = source.counters[type];
            this.inc({ type, endpoint: source.endpoint }, value - (reported.events[type] ?? 0));
            reported.events[type] = value;
          }
        }
      },
    });
    this.pending = new Gauge({
      name: 'registry_notifications_pending',
      help: 'Events accepted and not yet delivered.',
      labelNames: ['endpoint'],
      registers,
      collect() {
        for (const source of counted.keys()) this.set({ endpoint: source.endpoint }, source.counters.Pending);
      },
    });
    this.statuses = new Counter({
      name: 'registry_notifications_status_total',
      help: 'Events by the HTTP status the endpoint answered, e.g. "200 OK".',
      labelNames: ['code', 'endpoint'],
      registers,
      collect() {
        for (const [source, reported] of counted) {
          for (const [code, value] of Object.entries(source.counters.Statuses)) {
            this.inc({ code, endpoint: source.endpoint }, value - (reported.statuses[code] ?? 0));
            reported.statuses[code] = value;
          }
        }
      },
    });
    this.latency = new Histogram({
      name: 'registry_notifications_delivery_seconds',
      help: 'Time from sending a request to an endpoint to its answer, answered or not.',
      labelNames: ['endpoint'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.state = new Gauge({
      name: 'registry_notifications_endpoint_state',
      help: 'Delivery state of each endpoint: 1 for the current one of closed, open, half-open, paused, gone, stopped.',
      labelNames: ['endpoint', 'state'],
      registers,
    });
    const ages = this.oldestPendingOf;
    this.oldestPending = new Gauge({
      name: 'registry_notifications_oldest_pending_seconds',
      help: 'Age of the oldest event accepted and not yet delivered, in seconds; 0 when none is pending.',
      labelNames: ['endpoint'],
      registers,
      collect() {
        for (const [endpoint, age] of ages) this.set({ endpoint }, age() ?? 0);
      },
    });
  }

  /**
   * Reports the endpoint's counters at each scrape: `registry_notifications_events_total`
   * (the outcomes it has counted), `registry_notifications_status_total` and
   * `registry_notifications_pending`.
   */
  watchCounters(source: CountedEndpoint): void {
    this.counted.set(source, { events: {}, statuses: {} });
  }

  /** Reports `age()` as the endpoint's oldest pending age at each scrape. */
  watchOldestPending(endpoint: string, age: () => number | null): void {
    this.oldestPendingOf.set(endpoint, age);
  }
}
