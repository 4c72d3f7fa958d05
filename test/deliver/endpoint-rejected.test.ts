// Item 1: an answer that refuses an event for good (413, and other 4xx but 408, 410 and
// 429) must not stop its endpoint: the event is found, dead-lettered with the answer as
// its reason, and the rest flow on.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Endpoint } from '../../lib/deliver/endpoint';
import { EndpointStats } from '../../lib/inspect/endpoint-stats';
import { MemoryStore } from '../../lib/stores/memory-store';
import { decodeEnvelope, encodeEnvelope } from '../../lib/codec/envelope';
import type { Event } from '../../lib/model/event';
import { makeEvent, makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { waitFor } from '../helpers/wait';

/** An event whose body is far larger than the others': an image index of many manifests. */
function oversized(): Event {
  const big = makeEvent('push');
  big.target.references = Array.from({ length: 300 }, (_, i) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: i + 1,
    digest: 'sha256:' + String(i).padStart(64, '0'),
  }));
  return big;
}

describe('Endpoint: an answer that refuses one event for good', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  it('finds the oversized event of a batch a receiver answers 413, dead-letters it alone, and delivers the rest in order', async () => {
    const events = makeEvents(12);
    const big = oversized();
    events.splice(5, 0, big);
    // A receiver with a body limit, as the bundled one has: the small events fit together, the big one never does.
    const limit = Buffer.byteLength(encodeEnvelope(events.filter((e) => e !== big))) + 100;
    expect(Buffer.byteLength(encodeEnvelope([big]))).toBeGreaterThan(limit);
    receiver.respond = (r) => (Buffer.byteLength(r.body) > limit ? 413 : 200);
    const store = new MemoryStore();
    await store.append(events); // a backlog: they go in one request
    const e = new Endpoint({ name: 'hook', url: receiver.url, backoffMs: 1 }, { store, onError: () => undefined });
    await receiver.until((r) => r.events.length === events.length - 1);
    const later = makeEvents(2);
    await e.write(later);
    await receiver.until((r) => r.events.length === events.length + 1);
    await waitFor(() => e.stats.snapshot().Pending === 0, { describe: () => e.stats.snapshot() });
    await e.close();

    expect(receiver.events.map((x) => x.id)).toEqual([...events.filter((x) => x !== big), ...later].map((x) => x.id));
    // No retries: the big event went alone once, and was given up on.
    expect(receiver.requests.filter((r) => r.body === encodeEnvelope([big]))).toHaveLength(1);
    const letters = await e.listDeadLetters();
    expect(letters.map((l) => l.event.id)).toEqual([big.id]);
    expect(letters[0].reason).toBe(`HTTP 413 Payload Too Large from ${receiver.url}`);
    expect(e.stats.snapshot()).toMatchObject({ DeadLettered: 1, Dropped: 0, Successes: events.length + 1, Pending: 0, State: 'closed' });
  });

  it.each([400, 403, 404, 413, 422])('dead-letters an event answered %i at once and delivers the next', async (status) => {
    const [bad, good] = makeEvents(2);
    receiver.respond = (r) => (r.body.includes(bad.id) ? status : 200);
    const e = new Endpoint({ name: 'hook', url: receiver.url, maxEvents: 1, backoffMs: 1 }, { onError: () => undefined });
    await e.write([bad, good]);
    await receiver.until((r) => r.events.length === 1);
    await waitFor(() => e.stats.snapshot().Pending === 0, { describe: () => e.stats.snapshot() });
    await e.close();
    expect(receiver.events.map((x) => x.id)).toEqual([good.id]);
    expect(receiver.requests).toHaveLength(2);
    const [letter] = await e.listDeadLetters();
    expect(letter.event.id).toBe(bad.id);
    expect(letter.reason).toMatch(new RegExp(`^HTTP ${status} [A-Z][\\w ]+ from ${receiver.url}$`));
  });

  it.each([408, 429])('retries an event answered %i, which asks to try again', async (status) => {
    receiver.respond = (_r, i) => (i < 2 ? status : 200);
    const [event] = makeEvents(1);
    const e = new Endpoint({ name: 'hook', url: receiver.url, backoffMs: 1 }, { onError: () => undefined });
    await e.write([event]);
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    expect(receiver.events.map((x) => x.id)).toEqual([event.id]);
    expect(receiver.requests).toHaveLength(3);
    expect(await e.listDeadLetters()).toEqual([]);
  });

  it('does not open the breaker for a run of refused events: the endpoint answered, it is not down', async () => {
    const events = makeEvents(6);
    const refused = new Set(events.slice(0, 5).map((x) => x.id));
    receiver.respond = (r) => ([...refused].some((id) => r.body.includes(id)) ? 400 : 200);
    // With the breaker counting them, the first 400 would open it for an hour.
    const e = new Endpoint({ name: 'hook', url: receiver.url, maxEvents: 1, threshold: 1, backoffMs: 3_600_000 }, { onError: () => undefined, drainTimeoutMs: 10 });
    await e.write(events);
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    expect(receiver.events.map((x) => x.id)).toEqual([events[5].id]);
    expect(e.stats.snapshot()).toMatchObject({ DeadLettered: 5, State: 'closed' });
  });

  it('resends nothing the endpoint took when a refusal comes inside a write that timeouts had cut into several requests', async () => {
    // Takes 15ms per event (a batch of more than 10 outlasts the 200ms timeout) and refuses one event with 413.
    const events = makeEvents(40);
    const bad = events[25];
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const ids = decodeEnvelope(Buffer.concat(chunks)).events.map((x) => x.id);
        if (ids.length > 10) setTimeout(() => res.end(), 15 * ids.length);
        else if (ids.includes(bad.id)) res.writeHead(413).end();
        else res.end();
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const store = new MemoryStore();
    await store.append(events); // a backlog: one write of forty
    const accepted: string[] = [];
    const stats = new EndpointStats('slow');
    const hooks = stats.httpHooks();
    stats.httpHooks = () => ({ ...hooks, success: (status, sent, ms) => (accepted.push(...sent.map((x) => x.id)), hooks.success?.(status, sent, ms)) });
    const e = new Endpoint({ name: 'slow', url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, timeoutMs: 200, backoffMs: 1 }, { store, stats, onError: () => undefined });
    try {
      await waitFor(() => e.stats.snapshot().Pending === 0 && e.stats.snapshot().DeadLettered === 1, { describe: () => ({ accepted: accepted.length, stats: e.stats.snapshot() }) });
    } finally {
      await e.close();
      slow.closeAllConnections();
      slow.close();
    }
    // Each event but the refused one taken once, in order.
    expect(accepted).toEqual(events.filter((x) => x !== bad).map((x) => x.id));
    expect((await e.listDeadLetters()).map((l) => l.event.id)).toEqual([bad.id]);
  });
});
