// The endpoint counters reach Prometheus when the registry is scraped: each scrape adds
// what was counted since the last one, so values match the counters however often it runs.
import { Registry } from 'prom-client';
import { EndpointStats } from '../../lib/inspect/endpoint-stats';
import { NotificationMetrics } from '../../lib/inspect/metrics';
import { makeEvents } from '../helpers/events';

describe('NotificationMetrics from EndpointStats', () => {
  const setup = () => {
    const registry = new Registry();
    const metrics = new NotificationMetrics(registry);
    return { registry, hook: new EndpointStats('hook', metrics), other: new EndpointStats('other', metrics) };
  };

  it('shows the counters at each scrape, never counting twice', async () => {
    const { registry, hook } = setup();
    const queue = hook.queueHooks();
    const http = hook.httpHooks();
    queue.ingress!(makeEvents(3));
    let text = await registry.metrics();
    expect(text).toContain('registry_notifications_events_total{type="Events",endpoint="hook"} 3');
    expect(text).toContain('registry_notifications_pending{endpoint="hook"} 3');
    expect(text).not.toContain('type="Successes"');

    http.success!(200, makeEvents(2), 5);
    queue.egress!(makeEvents(2));
    queue.ingress!(makeEvents(4));
    text = await registry.metrics();
    expect(text).toContain('registry_notifications_events_total{type="Events",endpoint="hook"} 7');
    expect(text).toContain('registry_notifications_events_total{type="Successes",endpoint="hook"} 2');
    expect(text).toContain('registry_notifications_status_total{code="200 OK",endpoint="hook"} 2');
    expect(text).toContain('registry_notifications_pending{endpoint="hook"} 5');
    // A scrape with nothing new changes nothing (but the age of the oldest pending event).
    const counted = (t: string) => t.split('\n').filter((line) => !line.startsWith('registry_notifications_oldest_pending_seconds'));
    expect(counted(await registry.metrics())).toEqual(counted(text));
  });

  it('labels each endpoint apart, and a count of none makes its series', async () => {
    const { registry, hook, other } = setup();
    hook.queueHooks().dropped!(makeEvents(1), new Error('full'));
    other.spoolHooks().spooled!([]);
    other.httpHooks().failure!(503, makeEvents(2), 5);
    const text = await registry.metrics();
    expect(text).toContain('registry_notifications_events_total{type="Dropped",endpoint="hook"} 1');
    expect(text).toContain('registry_notifications_events_total{type="Spooled",endpoint="other"} 0');
    expect(text).toContain('registry_notifications_events_total{type="Failures",endpoint="other"} 2');
    expect(text).toContain('registry_notifications_status_total{code="503 Service Unavailable",endpoint="other"} 2');
    expect(text).toContain('registry_notifications_pending{endpoint="other"} 0');
    expect(text).not.toContain('type="Dropped",endpoint="other"');
  });
});
