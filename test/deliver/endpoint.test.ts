import { Endpoint } from '../../lib/deliver/endpoint';
import { EndpointStats } from '../../lib/inspect/endpoint-stats';
import { MemoryStore } from '../../lib/stores/memory-store';
import { NotificationMetrics } from '../../lib/inspect/metrics';
import type { Event } from '../../lib';
import { Registry } from 'prom-client';
import { decodeEnvelope, encodeEnvelope } from '../../lib';
import { makeEvent, makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { sleep, waitFor } from '../helpers/wait';

describe('Endpoint', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  it('takes Distribution\'s defaults (timeout 1s, threshold 10, backoff 1s) and sends an idle endpoint each event alone, byte for byte Distribution\'s', async () => {
    const e = new Endpoint({ name: 'hook', url: receiver.url });
    expect(e.config).toMatchObject({ timeoutMs: 1000, threshold: 10, backoffMs: 1000, maxEvents: 250, maxBytes: 262_144, lingerMs: 10, maxRetries: -1, envelope: 'v1' });
    const events = makeEvents(3);
    for (const [i, event] of events.entries()) {
      await e.write([event]);
      await receiver.until((r) => r.events.length === i + 1);
      await sleep(40); // idle again: a quiet spell longer than the linger
    }
    await e.close();
    expect(receiver.requests.map((r) => r.body)).toEqual(events.map((event) => encodeEnvelope([event])));
    expect(receiver.requests.every((r) => r.headers['content-type'] === 'application/vnd.docker.distribution.events.v1+json')).toBe(true);
  });

  it('sends the events that piled up behind a request in flight together, in order, up to maxevents', async () => {
    const e = new Endpoint({ name: 'hook', url: receiver.url, maxEvents: 50 });
    const events = makeEvents(120);
    await e.write(events.slice(0, 1));
    await receiver.until((r) => r.requests.length === 1);
    // The answer to the first request is still on its way: these pile up behind it.
    for (const event of events.slice(1)) await e.write([event]);
    await receiver.until((r) => r.events.length === 120);
    await e.close();
    const sizes = receiver.requests.map((r) => decodeEnvelope(r.body).events.length);
    expect(sizes[0]).toBe(1);
    expect(Math.max(...sizes)).toBe(50);
    expect(receiver.events.map((x) => x.id)).toEqual(events.map((x) => x.id));
    expect(e.stats.snapshot()).toMatchObject({ Events: 120, Successes: 120, Pending: 0 });
  });

  it('with maxevents 1 sends strictly one event per request, as Distribution', async () => {
    const e = new Endpoint({ name: 'hook', url: receiver.url, maxEvents: 1 });
    const events = makeEvents(20);
    await e.write(events);
    await receiver.until((r) => r.events.length === 20);
    await e.close();
    expect(receiver.requests.map((r) => r.body)).toEqual(events.map((event) => encodeEnvelope([event])));
  });

  it('filters, queues, retries through an outage and counts every outcome', async () => {
    // Two 500s, then a dropped-looking 503, then success.
    receiver.respond = (_r, i) => (i < 2 ? 500 : i === 2 ? 503 : 200);
    const registry = new Registry();
    const stats = new EndpointStats('hook', new NotificationMetrics(registry));
    const e = new Endpoint(
      { name: 'hook', url: receiver.url, threshold: 2, backoffMs: 5, ignore: { mediaTypes: [], actions: ['pull'], repositories: [], tags: [], kinds: [] } },
      { stats },
    );
    const push = makeEvent('push');
    await e.write([push, makeEvent('pull')]);
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    expect(receiver.events.map((x: Event) => x.id)).toEqual([push.id]);
    expect(stats.snapshot()).toMatchObject({
      Pending: 0,
      Events: 1,
      Successes: 1,
      Failures: 3,
      Errors: 0,
      Statuses: { '500 Internal Server Error': 2, '503 Service Unavailable': 1, '200 OK': 1 },
    });
    const text = await registry.metrics();
    expect(text).toContain('registry_notifications_events_total{type="Failures",endpoint="hook"} 3');
    expect(text).toContain('registry_notifications_status_total{code="200 OK",endpoint="hook"} 1');
    expect(text).toContain('registry_notifications_pending{endpoint="hook"} 0');
    expect(text).toMatch(/registry_notifications_delivery_seconds_count\{endpoint="hook"\} 4/);
    expect(text).toContain('registry_notifications_endpoint_state{endpoint="hook",state="closed"} 1');
    expect(text).toContain('registry_notifications_endpoint_state{endpoint="hook",state="open"} 0');
  });

  it('closes promptly while a dead endpoint is in backoff, leaving events in the store', async () => {
    const store = new MemoryStore();
    const e = new Endpoint(
      { name: 'dead', url: 'http://127.0.0.1:9/', threshold: 1, backoffMs: 3_600_000 },
      { store, drainTimeoutMs: 50, onError: () => undefined },
    );
    await e.write(makeEvents(2));
    await waitFor(() => e.stats.snapshot().State === 'open', { describe: () => e.stats.snapshot() });
    await e.close();
    expect(await store.pending()).toBe(2);
    expect(e.stats.snapshot().Errors).toBeGreaterThanOrEqual(1);
  });

  it('dead-letters an event after maxretries, delivers the next, and replays it later', async () => {
    receiver.respond = (r) => (r.body.includes('"tag": "bad"') ? 500 : 200);
    // One event per request, so that the bad event fails alone.
    const e = new Endpoint({ name: 'hook', url: receiver.url, maxRetries: 1, backoffMs: 1, threshold: 1, maxEvents: 1 }, { onError: () => undefined });
    const bad = makeEvent('push');
    bad.target.tag = 'bad';
    const good = makeEvent('push');
    await e.write([bad, good]);
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    expect(receiver.events[0].id).toBe(good.id);
    expect(receiver.requests).toHaveLength(3);
    expect(e.stats.snapshot()).toMatchObject({ DeadLettered: 1, Dropped: 0, Successes: 1, Failures: 2 });
    const [letter] = await e.listDeadLetters();
    expect(letter.event.id).toBe(bad.id);
    expect(letter.reason).toMatch(/gave up after 2 attempts: POST .* 500 Internal Server Error/);

    // Replayed once the endpoint is fixed, with the same id.
    receiver.respond = () => 200;
    const again = new Endpoint({ name: 'hook', url: receiver.url }, { deadLetters: e.deadLetters });
    expect((await again.replayDeadLetters()).map((x) => x.id)).toEqual([bad.id]);
    await receiver.until((r) => r.events.length === 2);
    await again.close();
    expect(receiver.events[1].id).toBe(bad.id);
  });
});
