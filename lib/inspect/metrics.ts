import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'registry_notifications_events_total',
      help: 'Events by outcome: Events (accepted), Successes, Failures, Errors, Dropped, DeadLettered, Spooled (kept on disk while the store could not take them).',
      labelNames: ['type', 'endpoint'],
      registers,
    });
    this.pending = new Gauge({
      name: 'registry_notifications_pending',
      help: 'Events accepted and not yet delivered.',
      labelNames: ['endpoint'],
      registers,
    });
    this.statuses = new Counter({
      name: 'registry_notifications_status_total',
      help: 'Events by the HTTP status the endpoint answered, e.g. "200 OK".',
      labelNames: ['code', 'endpoint'],
      registers,
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

  /** Reports `age()` as the endpoint's oldest pending age at each scrape. */
  watchOldestPending(endpoint: string, age: () => number | null): void {
    this.oldestPendingOf.set(endpoint, age);
  }
}
