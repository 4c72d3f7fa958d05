import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Broadcaster } from '../../lib/deliver/broadcaster';
import { decodeBatch, decodeBinary, decodeStructured } from '../../lib/codec/cloudevents';
import { decodeEnvelope, encodeEnvelope, verifyWebhook } from '../../lib';
import { Endpoint } from '../../lib/deliver/endpoint';
import { EndpointStats } from '../../lib/inspect/endpoint-stats';
import { MemoryStore } from '../../lib/stores/memory-store';
import type { BreakerState } from '../../lib/deliver/breaker';
import { makeEvent, makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { sleep, waitFor } from '../helpers/wait';

// Per-endpoint options beyond Distribution: batching, signing, formats, smarter retries.
describe('Endpoint options beyond Distribution', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  it('batches up to maxevents per envelope, and one event per envelope keeps Distribution\'s bytes', async () => {
    const e = new Endpoint({ name: 'b', url: receiver.url, maxEvents: 10, lingerMs: 20 });
    const events = makeEvents(25);
    await e.write(events);
    await receiver.until((r) => r.events.length === 25);
    await e.close();
    const sizes = receiver.requests.map((r) => JSON.parse(r.body).events.length);
    expect(Math.max(...sizes)).toBe(10);
    expect(sizes.reduce((a, b) => a + b)).toBe(25);
    expect(receiver.events.map((x) => x.id)).toEqual(events.map((x) => x.id));

    const single = new Endpoint({ name: 's', url: receiver.url, maxEvents: 10, lingerMs: 1 });
    const one = makeEvent();
    await single.write([one]);
    await receiver.until((r) => r.events.length === 26);
    await single.close();
    expect(receiver.requests[receiver.requests.length - 1].body).toBe(encodeEnvelope([one]));
  });

  it('keeps each request within maxbytes, an event larger than that alone, every body Distribution\'s envelope of its events', async () => {
    const small = makeEvents(40);
    const maxBytes = Buffer.byteLength(encodeEnvelope(small.slice(0, 5)));
    const big = makeEvent('push');
    big.target.references = Array.from({ length: 40 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: i + 1, digest: 'sha256:' + String(i).padStart(64, '0') }));
    const events = [...small.slice(0, 12), big, ...small.slice(12)];
    const store = new MemoryStore();
    await store.append(events); // a backlog, as after an outage
    const e = new Endpoint({ name: 'sized', url: receiver.url, maxBytes }, { store });
    await receiver.until((r) => r.events.length === events.length);
    await e.close();
    expect(receiver.events.map((x) => x.id)).toEqual(events.map((x) => x.id));
    let at = 0;
    for (const r of receiver.requests) {
      const n = JSON.parse(r.body).events.length;
      expect(r.body).toBe(encodeEnvelope(events.slice(at, at + n)));
      if (n > 1) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(maxBytes);
      else if (events[at] === big) expect(Buffer.byteLength(r.body)).toBeGreaterThan(maxBytes);
      at += n;
    }
    expect(receiver.requests.map((r) => r.body)).toContain(encodeEnvelope([big]));
    expect(Math.max(...receiver.requests.map((r) => JSON.parse(r.body).events.length))).toBeGreaterThanOrEqual(4);
  });

  it('cuts requests shorter when a batch times out at a receiver that handles events one by one, resending nothing it took', async () => {
    // Answers after 15ms per event: 40 events take 600ms, past the 200ms timeout.
    const sizes: number[] = [];
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const { events } = decodeEnvelope(Buffer.concat(chunks));
        sizes.push(events.length);
        setTimeout(() => res.end(), 15 * events.length);
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const store = new MemoryStore();
    const events = makeEvents(40);
    await store.append(events); // a backlog
    // Which events each accepted request carried.
    const accepted: string[] = [];
    const stats = new EndpointStats('slow');
    const hooks = stats.httpHooks();
    stats.httpHooks = () => ({ ...hooks, success: (status, sent, ms) => (accepted.push(...sent.map((x) => x.id)), hooks.success?.(status, sent, ms)) });
    const e = new Endpoint({ name: 'slow', url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, timeoutMs: 200 }, { store, stats, onError: () => undefined });
    await waitFor(() => e.stats.snapshot().Successes === 40, { describe: () => ({ sizes, stats: e.stats.snapshot() }) });
    await e.close();
    slow.closeAllConnections();
    slow.close();
    expect(sizes.slice(0, 2)).toEqual([40, 20]);
    expect(Math.max(...sizes.slice(2))).toBeLessThanOrEqual(10);
    expect(e.stats.snapshot()).toMatchObject({ Successes: 40, Pending: 0 });
    expect(e.stats.snapshot().Errors).toBeGreaterThanOrEqual(2);
    // Each event was accepted once, in order: no retry resent a part already taken.
    expect(accepted).toEqual(events.map((x) => x.id));
  });

  it('signs every request with each secret (Standard Webhooks), verifiable with any one of them', async () => {
    const secrets = ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_' + Buffer.from('rotated-key-0123456789').toString('base64')];
    const e = new Endpoint({ name: 'signed', url: receiver.url, secrets, maxEvents: 5, lingerMs: 10 });
    const events = makeEvents(3);
    await e.write(events.slice(0, 1));
    await receiver.until((r) => r.events.length === 1);
    await e.write(events.slice(1));
    await receiver.until((r) => r.events.length === 3);
    await e.close();
    const [first, second] = receiver.requests;
    expect(first.headers['webhook-id']).toBe(events[0].id);
    expect((first.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
    for (const secret of secrets) expect(verifyWebhook([secret], first.headers, first.body).id).toBe(events[0].id);
    expect(second.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(() => verifyWebhook(['whsec_' + Buffer.from('wrong').toString('base64')], second.headers, second.body)).toThrow(/no webhook-signature matches/);
    expect(() => verifyWebhook([secrets[0]], second.headers, second.body + ' ')).toThrow();
  });

  it.each([
    ['cloudevents', 'application/cloudevents+json; charset=utf-8', (r: { body: string }) => [decodeStructured(r.body)]],
    ['cloudevents-batch', 'application/cloudevents-batch+json; charset=utf-8', (r: { body: string }) => decodeBatch(r.body)],
    ['cloudevents-binary', 'application/json', (r: { body: string; headers: Record<string, string | string[] | undefined> }) => [decodeBinary(r.headers, r.body)]],
  ] as const)('sends CloudEvents in %s mode', async (format, contentType, decode) => {
    // The single-event formats take their default of one event per request.
    const e = new Endpoint({ name: format, url: receiver.url, format, maxEvents: format === 'cloudevents-batch' ? 5 : undefined, lingerMs: 10 });
    expect(e.config.maxEvents).toBe(format === 'cloudevents-batch' ? 5 : 1);
    const events = makeEvents(3);
    await e.write(events);
    await receiver.until((r) => r.requests.length > 0 && r.requests.flatMap((q) => decode(q)).length === 3);
    await e.close();
    expect(receiver.requests[0].headers['content-type']).toBe(contentType);
    expect(receiver.requests.flatMap((q) => decode(q)).map((x) => x.id)).toEqual(events.map((x) => x.id));
    if (format === 'cloudevents-binary') expect(receiver.requests[0].headers['ce-type']).toBe('io.distribution.manifest.push');
  });

  it('honours Retry-After on 429 and 503 before retrying', async () => {
    receiver.respond = (_r, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': '0' } } : i === 1 ? { status: 503, headers: { 'Retry-After': '0' } } : 200);
    const e = new Endpoint({ name: 'busy', url: receiver.url, backoffMs: 1 });
    await e.write(makeEvents(1));
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    expect(e.stats.snapshot().Statuses).toEqual({ '429 Too Many Requests': 1, '503 Service Unavailable': 1, '200 OK': 1 });
  });

  it('stops delivering on 410 Gone, keeps queueing what comes meanwhile, and delivers it all, in order, once resumed', async () => {
    receiver.respond = () => 410;
    const store = new MemoryStore();
    const errors: string[] = [];
    const e = new Endpoint({ name: 'gone', url: receiver.url, backoffMs: 1 }, { store, onError: (err) => errors.push(err.message) });
    const before = makeEvents(2);
    await e.write(before);
    await receiver.until((r) => r.requests.length === 1);
    await waitFor(() => e.control !== undefined, { describe: () => e.stats.snapshot() });
    // Negative window: a retry of the 410 (backoff 1ms) would arrive within it.
    await sleep(30);
    const meanwhile = makeEvents(3);
    await e.write(meanwhile); // queued, not dropped
    await sleep(30);
    expect(receiver.requests).toHaveLength(1);
    expect(await store.pending()).toBe(5);
    expect(e.control).toMatchObject({ state: 'gone', reason: `HTTP 410 Gone from ${receiver.url}` });
    expect(await store.loadControl()).toMatchObject({ state: 'gone' });
    expect(e.stats.snapshot()).toMatchObject({ State: 'gone', Dropped: 0, Pending: 5 });
    expect(errors.join('\n')).toMatch(/410 Gone unaccepted: endpoint is gone/);

    receiver.respond = () => 200;
    await e.resume();
    await receiver.until((r) => r.events.length === 5);
    await e.close();
    expect(receiver.events.map((x) => x.id)).toEqual([...before, ...meanwhile].map((x) => x.id));
    expect(e.control).toBeUndefined();
    expect(await store.loadControl()).toBeUndefined();
    expect(e.stats.snapshot()).toMatchObject({ State: 'closed', Pending: 0, Dropped: 0 });
  });

  it('opens the breaker, probes with growing waits up to the ceiling, and closes on success, telling the stats each time', async () => {
    receiver.respond = (_r, i) => (i < 4 ? 500 : 200);
    const states: BreakerState[] = [];
    const e = new Endpoint({ name: 'cb', url: receiver.url, threshold: 2, backoffMs: 5, maxBackoffMs: 20 });
    const setState = e.stats.setState.bind(e.stats);
    e.stats.setState = (s: string) => {
      states.push(s as BreakerState);
      setState(s);
    };
    await e.write(makeEvents(1));
    await receiver.until((r) => r.events.length === 1);
    await e.close();
    // Failures 1 and 2 open it; each failed probe (3, 4) re-opens; the fifth attempt succeeds.
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'closed']);
    expect(e.stats.snapshot().State).toBe('closed');
  });

  it('never lets a stuck endpoint delay another', async () => {
    const silent = net.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const stuck = new Endpoint({ name: 'stuck', url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, timeoutMs: 60_000 }, { drainTimeoutMs: 10 });
    const healthy = new Endpoint({ name: 'healthy', url: receiver.url });
    const b = new Broadcaster([stuck, healthy]);
    for (const ev of makeEvents(20)) await b.write([ev]);
    await receiver.until((r) => r.events.length === 20);
    expect(stuck.stats.snapshot()).toMatchObject({ Pending: 20, Successes: 0 });
    await b.close();
    silent.close();
  });
});
