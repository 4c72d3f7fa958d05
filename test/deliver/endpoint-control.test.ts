// Pause, resume, 410 Gone and "deliver now": an endpoint's delivery control, saved in its
// store so it holds across restarts, with a real receiver and a real SQLite file.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { Endpoint } from '../../lib/deliver/endpoint';
import { HttpStatusError } from '../../lib/deliver/http-sink';
import { EndpointStats } from '../../lib/inspect/endpoint-stats';
import { NotificationMetrics } from '../../lib/inspect/metrics';
import { endpointVars } from '../../lib/inspect/debug-vars';
import { MemoryStore } from '../../lib/stores/memory-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { StoreCorruptError, type QueueStore, type StoredEvent } from '../../lib/stores/queue-store';
import { decodeEnvelope, encodeEnvelope } from '../../lib/codec/envelope';
import { verifyWebhook } from '../../lib/codec/signing';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { sleep, waitFor } from '../helpers/wait';

/** A fault injector: a memory store whose `take` reports damage while `damaged` is set. */
class DamagedStore extends MemoryStore {
  damaged = true;
  takes = 0;
  override async take(max: number, signal: AbortSignal, waitMs?: number): Promise<StoredEvent[]> {
    const taken = await super.take(max, signal, waitMs);
    if (taken.length > 0 && this.damaged) {
      this.takes++;
      throw new StoreCorruptError('memory', 'row 7 is not an event (injected)');
    }
    return taken;
  }
}

describe('Endpoint delivery control', () => {
  let receiver: TestReceiver;
  let dir: string;
  const open: Endpoint[] = [];
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'endpoint-control-'));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An endpoint on the SQLite file of this test, started as the registry starts it. */
  async function endpointOnFile(extra: { stats?: EndpointStats; onError?: (err: Error) => void } = {}): Promise<Endpoint> {
    const store = new SqliteStore({ path: path.join(dir, 'notifications.db'), queue: 'hook', pollMs: 20 });
    const e = new Endpoint({ name: 'hook', url: receiver.url, backoffMs: 1 }, { store, drainTimeoutMs: 100, onError: () => undefined, ...extra });
    open.push(e);
    await e.start();
    return e;
  }

  it('pauses: events keep queueing on disk and nothing is sent, across a restart, until resumed; then all arrive in order', async () => {
    const first = await endpointOnFile();
    await first.pause('maintenance of the scanner');
    expect(first.control).toMatchObject({ state: 'paused', reason: 'maintenance of the scanner' });
    const events = makeEvents(5);
    for (const ev of events) await first.write([ev]);
    await sleep(100); // negative window: a running endpoint delivers these within a few ms
    expect(receiver.requests).toHaveLength(0);
    expect(first.stats.snapshot()).toMatchObject({ State: 'paused', Pending: 5, Events: 5 });
    await first.close();

    // The registry restarts: a new process's Endpoint on the same file is still paused.
    const registry = new Registry();
    const second = await endpointOnFile({ stats: new EndpointStats('hook', new NotificationMetrics(registry)) });
    expect(second.control).toMatchObject({ state: 'paused', reason: 'maintenance of the scanner' });
    const more = makeEvents(2);
    await second.write(more);
    await sleep(100);
    expect(receiver.requests).toHaveLength(0);
    expect(second.stats.snapshot()).toMatchObject({ State: 'paused', Pending: 7 });
    expect(endpointVars(second).Metrics.State).toBe('paused');
    const metrics = await registry.metrics();
    expect(metrics).toContain('registry_notifications_endpoint_state{endpoint="hook",state="paused"} 1');
    expect(metrics).toContain('registry_notifications_endpoint_state{endpoint="hook",state="closed"} 0');

    await second.resume();
    expect(second.control).toBeUndefined();
    await receiver.until((r) => r.events.length === 7);
    expect(receiver.events.map((x) => x.id)).toEqual([...events, ...more].map((x) => x.id));
    await waitFor(() => second.stats.snapshot().Pending === 0, { describe: () => second.stats.snapshot() });
    expect(second.stats.snapshot().State).toBe('closed');
    await second.close();

    // Resumed is saved too: the next start delivers at once.
    const third = await endpointOnFile();
    expect(third.control).toBeUndefined();
    await third.write(makeEvents(1));
    await receiver.until((r) => r.events.length === 8);
  });

  it('stops on 410 Gone, saves it, queues what comes meanwhile, stays gone after a restart, and delivers it all once resumed', async () => {
    receiver.respond = () => 410;
    const errors: string[] = [];
    const first = await endpointOnFile({ onError: (err) => errors.push(err.message) });
    const events = makeEvents(4);
    await first.write(events.slice(0, 1));
    await waitFor(() => first.control?.state === 'gone', { describe: () => first.stats.snapshot() });
    await first.write(events.slice(1)); // queued, not dropped
    await sleep(50); // negative window: a retry would arrive within it (backoff 1ms)
    expect(receiver.requests).toHaveLength(1);
    expect(first.stats.snapshot()).toMatchObject({ State: 'gone', Pending: 4, Dropped: 0 });
    expect(errors.filter((m) => /endpoint is gone/.test(m))).toHaveLength(1);
    await first.close();

    const second = await endpointOnFile();
    expect(second.control).toMatchObject({ state: 'gone', reason: `HTTP 410 Gone from ${receiver.url}` });
    await sleep(50);
    expect(receiver.requests).toHaveLength(1); // nothing tried at start
    expect(second.stats.snapshot()).toMatchObject({ State: 'gone', Pending: 4 });

    receiver.respond = () => 200;
    await second.resume();
    await receiver.until((r) => r.events.length === 4);
    expect(receiver.events.map((x) => x.id)).toEqual(events.map((x) => x.id));
  });

  it('lets the request in flight finish when paused, and sends it no second time after resuming', async () => {
    // Answers 200 after a while, recording which events each request carried.
    const bodies: string[][] = [];
    const slow = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        bodies.push(decodeEnvelope(Buffer.concat(chunks)).events.map((x) => x.id));
        setTimeout(() => res.end(), 150);
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const e = new Endpoint({ name: 'slow', url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/` });
      open.push(e);
      const [first, ...rest] = makeEvents(3);
      await e.write([first]);
      await waitFor(() => bodies.length === 1);
      await e.pause(); // resolves once that request was answered
      expect(e.stats.snapshot()).toMatchObject({ Successes: 1, Pending: 0, State: 'paused' });
      await e.write(rest);
      await sleep(100);
      expect(bodies).toHaveLength(1);
      await e.resume();
      await waitFor(() => e.stats.snapshot().Successes === 3, { describe: () => ({ bodies, stats: e.stats.snapshot() }) });
      await e.close();
      expect(bodies).toEqual([[first.id], rest.map((x) => x.id)]);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('pauses at once while a dead endpoint is in backoff, and pausing or resuming twice changes nothing', async () => {
    const store = new MemoryStore();
    const e = new Endpoint({ name: 'dead', url: 'http://127.0.0.1:9/', threshold: 1, backoffMs: 3_600_000 }, { store, drainTimeoutMs: 10, onError: () => undefined });
    open.push(e);
    await e.write(makeEvents(2));
    await waitFor(() => e.stats.snapshot().State === 'open', { describe: () => e.stats.snapshot() });
    // Waiting an hour for the backoff would pass the test's time limit.
    await e.pause();
    const control = e.control;
    expect(control).toMatchObject({ state: 'paused', reason: 'paused by an operator' });
    await e.pause('again');
    expect(e.control).toEqual(control);
    expect(await store.loadControl()).toEqual(control);
    expect(e.stats.snapshot()).toMatchObject({ State: 'paused', Pending: 2 });
    await Promise.all([e.resume(), e.resume()]);
    expect(e.control).toBeUndefined();
    expect(await store.loadControl()).toBeUndefined();
  });

  it('keeps the control in memory with a store that cannot save it', async () => {
    const memory = new MemoryStore();
    // A store of one's own that implements only the required methods.
    const store: QueueStore = {
      description: 'custom',
      append: (events) => memory.append(events),
      take: (max, signal, waitMs) => memory.take(max, signal, waitMs),
      ack: (entries) => memory.ack(entries),
      pending: () => memory.pending(),
      close: () => memory.close(),
    };
    const e = new Endpoint({ name: 'hook', url: receiver.url }, { store });
    open.push(e);
    await e.start();
    await e.pause();
    const events = makeEvents(3);
    await e.write(events);
    await sleep(50);
    expect(receiver.requests).toHaveLength(0);
    await e.resume();
    await receiver.until((r) => r.events.length === 3);
    expect(receiver.events.map((x) => x.id)).toEqual(events.map((x) => x.id));
  });

  it('delivers a test event now, signed as delivery signs, even while paused, and stores and counts nothing', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const store = new MemoryStore();
    const e = new Endpoint({ name: 'hook', url: receiver.url, secrets: [secret], headers: { 'X-Team': ['registry'] } }, { store });
    open.push(e);
    await e.pause();
    const [event] = makeEvents(1);
    await e.deliverNow([event]);
    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests;
    expect(req.body).toBe(encodeEnvelope([event]));
    expect(req.headers['x-team']).toBe('registry');
    expect(verifyWebhook([secret], req.headers, req.body).id).toBe(event.id);
    expect(await store.pending()).toBe(0);
    expect(e.stats.snapshot()).toMatchObject({ Events: 0, Successes: 0, Pending: 0, State: 'paused' });

    // No retry: the answer comes back as the error.
    receiver.respond = () => 500;
    const err = await e.deliverNow(makeEvents(1)).catch((x) => x);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err.status).toBe(500);
    expect(receiver.requests).toHaveLength(2);
    expect(await e.listDeadLetters()).toEqual([]);
  });

  it('stops delivery when the store is damaged: State stopped, said once, later writes kept by the store and not delivered until resumed', async () => {
    const store = new DamagedStore();
    const errors: string[] = [];
    const registry = new Registry();
    const e = new Endpoint({ name: 'hook', url: receiver.url }, { store, stats: new EndpointStats('hook', new NotificationMetrics(registry)), onError: (err) => errors.push(err.message) });
    open.push(e);
    await e.write(makeEvents(2));
    await waitFor(() => e.stats.snapshot().State === 'stopped', { describe: () => e.stats.snapshot() });
    await sleep(200); // negative window: a loop would take (and report) again within it
    expect(store.takes).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/memory: the store is damaged \(row 7 is not an event \(injected\)\); delivery from it is stopped/);
    // The store decides about later writes (this one still appends; a spool in front of a
    // real damaged file keeps them on disk): nothing is dropped, nothing is delivered.
    await e.write(makeEvents(1));
    expect(await store.pending()).toBe(3);
    expect(await registry.metrics()).toContain('registry_notifications_endpoint_state{endpoint="hook",state="stopped"} 1');
    await sleep(100);
    expect(receiver.requests).toHaveLength(0);

    store.damaged = false; // repaired
    await e.resume();
    await e.write(makeEvents(1));
    await receiver.until((r) => r.events.length === 4);
    expect(e.stats.snapshot().State).toBe('closed');
  });
});
