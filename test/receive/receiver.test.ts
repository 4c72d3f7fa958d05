import { randomUUID } from 'node:crypto';
import express from 'express';
import Redis from 'ioredis';
import request from 'supertest';
import { encodeBatch, encodeBinary, encodeStructured } from '../../lib/codec/cloudevents';
import { eventType } from '../../lib/model/event-kind';
import { ClosedDeduplicatorError, MemoryDeduplicator, type Deduplicator } from '../../lib/receive/deduplicator';
import { RedisDeduplicator } from '../../lib/receive/redis-deduplicator';
import { decodeEvent, encodeEnvelope } from '../../lib/codec/envelope';
import type { Event } from '../../lib/model/event';
import { createReceiver, ReceiverOptionsError, type ReceiverOptions } from '../../lib/receive/receiver';
import { signWebhook } from '../../lib/codec/signing';
import { waitFor } from '../helpers/wait';
import { makeEvent, makeEvents } from '../helpers/events';
import { loadFixtures } from '../helpers/fixtures';

const V1 = 'application/vnd.docker.distribution.events.v1+json';
const V2 = 'application/vnd.docker.distribution.events.v2+json';
const TOKEN = 'secret-token';
const SECRET = 'whsec_' + Buffer.from('receiver-test-key-0123456789').toString('base64');

/** An app with the receiver at /hooks, recording what the handlers saw. */
function setup(options: ReceiverOptions = {}) {
  const seen: Event[] = [];
  const typed: string[] = [];
  const app = express();
  app.use(
    '/hooks',
    createReceiver({
      onEvent: (e) => void seen.push(e),
      on: {
        'manifest.push': (e) => void typed.push(`manifest.push ${e.id}`),
        'manifest.pull': (e) => void typed.push(`manifest.pull ${e.id}`),
        'manifest.delete': (e) => void typed.push(`manifest.delete ${e.id}`),
        'blob.push': (e) => void typed.push(`blob.push ${e.id}`),
        'blob.pull': (e) => void typed.push(`blob.pull ${e.id}`),
        'blob.mount': (e) => void typed.push(`blob.mount ${e.id}`),
        'tag.delete': (e) => void typed.push(`tag.delete ${e.id}`),
        'repository.delete': (e) => void typed.push(`repository.delete ${e.id}`),
      },
      ...options,
    }),
  );
  return { app, seen, typed };
}

const post = (app: express.Express, body: string, headers: Record<string, string>) =>
  request(app).post('/hooks').set(headers).send(body);

describe('createReceiver with Distribution 2.8.2 deliveries', () => {
  const fixtures = loadFixtures();

  test('the fixtures are all there', () => {
    expect(fixtures.map((f) => f.name)).toEqual([
      'blob-mount',
      'blob-pull-head',
      'blob-push',
      'manifest-delete',
      'manifest-pull-by-tag',
      'manifest-push-with-references',
      'tag-delete',
    ]);
  });

  test.each(loadFixtures().map((f) => [f.name, f] as const))('accepts %s byte for byte', async (_name, f) => {
    const { app, seen, typed } = setup({ token: TOKEN });
    const res = await post(app, f.body, f.headers);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0 });
    const expected = decodeEvent(f.parsed.events[0]);
    expect(seen).toEqual([expected]);
    expect(typed).toEqual([`${eventType(expected)} ${expected.id}`]);
  });

  test('a redelivery is acknowledged as a duplicate and not handed on', async () => {
    const { app, seen } = setup({ token: TOKEN });
    const f = fixtures[0];
    await post(app, f.body, f.headers).expect(200);
    const again = await post(app, f.body, f.headers);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ accepted: 0, duplicates: 1 });
    expect(seen).toHaveLength(1);
  });
});

describe('createReceiver formats', () => {
  test('an envelope of many events (v2 media type), in order, dropping a repeat within it', async () => {
    const { app, seen } = setup();
    const events = makeEvents(4);
    const res = await post(app, encodeEnvelope([...events, events[1]], { version: 'v2' }), { 'content-type': V2 });
    expect(res.body).toEqual({ accepted: 4, duplicates: 1 });
    expect(seen.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  test('plain application/json with a charset, and an empty envelope', async () => {
    const { app, seen } = setup();
    const e = makeEvent('pull');
    await post(app, encodeEnvelope([e]), { 'content-type': 'application/json; charset=utf-8' }).expect(200, { accepted: 1, duplicates: 0 });
    await post(app, '{}', { 'content-type': V1 }).expect(200, { accepted: 0, duplicates: 0 });
    expect(seen.map((x) => x.id)).toEqual([e.id]);
  });

  test('CloudEvents structured mode', async () => {
    const { app, seen, typed } = setup();
    const e = makeEvent('delete', { target: { repository: 'demo/app', tag: 'old' } });
    const { headers, body } = encodeStructured(e);
    await post(app, body, headers).expect(200, { accepted: 1, duplicates: 0 });
    expect(seen).toEqual([{ ...e, kind: 'tag' }]);
    expect(typed).toEqual([`tag.delete ${e.id}`]);
  });

  test('CloudEvents binary mode', async () => {
    const { app, seen, typed } = setup();
    const e = makeEvent('delete', { target: { repository: 'demo/app' } });
    const { headers, body } = encodeBinary(e);
    await post(app, body, headers).expect(200, { accepted: 1, duplicates: 0 });
    expect(seen).toEqual([{ ...e, kind: 'repository' }]);
    expect(typed).toEqual([`repository.delete ${e.id}`]);
  });

  test('CloudEvents batch mode, sharing dedupe with the other formats', async () => {
    const { app, seen } = setup();
    const events = makeEvents(3, 'pull');
    await post(app, encodeStructured(events[0]).body, encodeStructured(events[0]).headers).expect(200);
    const { headers, body } = encodeBatch(events);
    await post(app, body, headers).expect(200, { accepted: 2, duplicates: 1 });
    expect(seen.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });
});

describe('createReceiver rejects bad input with a JSON error', () => {
  const e = makeEvent();
  const envelope = encodeEnvelope([e]);

  test.each([
    ['octet-stream', { 'content-type': 'application/octet-stream' }, /content-type must be one of .*; got "application\/octet-stream"/],
    ['text/plain', { 'content-type': 'text/plain' }, /got "text\/plain"/],
    ['binary mode with XML data', { 'content-type': 'text/xml', 'ce-specversion': '1.0' }, /binary-mode CloudEvent data must be application\/json/],
  ])('415 for %s', async (_what, headers, message) => {
    const { app, seen } = setup();
    const res = await post(app, envelope, headers as Record<string, string>);
    expect(res.status).toBe(415);
    expect(res.body.error).toMatch(message);
    expect(seen).toHaveLength(0);
  });

  test('415 for a request without a content type', async () => {
    const { app } = setup();
    // A Buffer body makes supertest send no Content-Type at all.
    const res = await request(app).post('/hooks').send(Buffer.from(envelope));
    expect(res.status).toBe(415);
    expect(res.body.error).toMatch(/; got none$/);
  });

  test.each([
    ['malformed JSON', '{"events": [', /envelope is not valid JSON/],
    ['an array', '[]', /envelope must be a JSON object/],
    ['events not an array', '{"events": {}}', /"events" must be an array/],
    ['an object that is not an envelope', '{"hello": 1}', /not an envelope: expected a JSON object with an "events" array, got one with "hello"/],
    ['a timestamp that is not RFC 3339', '{"events": [{"id": "x", "timestamp": "1", "action": "push"}]}', /events\[0\]\.timestamp must be an RFC 3339 time, got "1"/],
    ['a size that is not a number', '{"events": [{"id": "x", "timestamp": "2025-01-01T00:00:00Z", "action": "push", "target": {"size": "huge"}}]}', /events\[0\]\.target\.size must be a whole number of bytes, got "huge"/],
    ['a repository that is not a string', '{"events": [{"id": "x", "timestamp": "2025-01-01T00:00:00Z", "action": "push", "target": {"repository": ["a"]}}]}', /events\[0\]\.target\.repository must be a string/],
    ['an actor name that is not a string', '{"events": [{"id": "x", "timestamp": "2025-01-01T00:00:00Z", "action": "push", "actor": {"name": 7}}]}', /events\[0\]\.actor\.name must be a string, got 7/],
    ['a reference that is not an object', '{"events": [{"id": "x", "timestamp": "2025-01-01T00:00:00Z", "action": "push", "target": {"references": [1]}}]}', /events\[0\]\.target\.references\[0\] must be an object/],
    ['an event without id', '{"events": [{"timestamp": "2025-01-01T00:00:00Z", "action": "push"}]}', /events\[0\].id must be a non-empty string/],
    ['an unknown action', `{"events": [{"id": "x", "timestamp": "2025-01-01T00:00:00Z", "action": "copy"}]}`, /events\[0\].action must be one of push, pull, mount, delete, got "copy"/],
  ])('400 for %s', async (_what, body, message) => {
    const { app, seen } = setup();
    const res = await post(app, body, { 'content-type': V1 });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body.error).toMatch(message);
    expect(seen).toHaveLength(0);
  });

  test('400 for a malformed CloudEvent', async () => {
    const { app } = setup();
    const res = await post(app, '{"specversion":"1.0","id":"1","source":"/x","type":"other"}', { 'content-type': 'application/cloudevents+json' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/type must start with "io.distribution."/);
  });

  test('413 for a body over the limit, naming it', async () => {
    const { app, seen } = setup({ limit: 200 });
    const res = await post(app, encodeEnvelope(makeEvents(3)), { 'content-type': V1 });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: 'request body is larger than the limit of 200 bytes' });
    expect(seen).toHaveLength(0);
  });

  test('405 for other methods', async () => {
    const { app } = setup();
    const res = await request(app).get('/hooks');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });

  test('500 when a body parser ran before the receiver, saying so', async () => {
    const app = express();
    app.use(express.json({ type: () => true }));
    app.use(createReceiver());
    const res = await request(app).post('/').set('content-type', V1).send(envelope);
    expect(res.status).toBe(500);
    expect(res.body.error).toMatch(/mount the receiver before body parsers/);
  });

  test('invalid options fail at creation', () => {
    expect(() => createReceiver({ limit: 0 })).toThrow(/limit must be a positive whole number of bytes, got 0/);
    expect(() => createReceiver({ token: '' })).toThrow(/token must not be empty/);
    expect(() => createReceiver({ secrets: ['ok', 'whsec_%%%'] })).toThrow(ReceiverOptionsError);
    expect(() => createReceiver({ secrets: ['ok', 'whsec_%%%'] })).toThrow(/secrets\[1\] is unusable: .*must be base64/);
  });
});

describe('createReceiver authentication', () => {
  const e = makeEvent();
  const body = encodeEnvelope([e]);

  test.each([
    ['no Authorization header', {}, /missing Authorization header/],
    ['another scheme', { authorization: `Basic ${TOKEN}` }, /must use the Bearer scheme/],
    ['a wrong token', { authorization: 'Bearer secret-tokem' }, /not the expected one/],
    ['a token prefix', { authorization: 'Bearer secret' }, /not the expected one/],
  ])('401 with %s', async (_what, headers, message) => {
    const { app, seen } = setup({ token: TOKEN });
    const res = await post(app, body, { 'content-type': V1, ...headers });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(message);
    expect(seen).toHaveLength(0);
  });

  test('the scheme name is case-insensitive', async () => {
    const { app } = setup({ token: TOKEN });
    await post(app, body, { 'content-type': V1, authorization: `bearer ${TOKEN}` }).expect(200);
  });

  test('a Standard Webhooks signature over the raw bytes is accepted', async () => {
    const { app, seen } = setup({ secrets: [SECRET] });
    const headers = signWebhook([SECRET], 'msg_1', Math.floor(Date.now() / 1000), body);
    await post(app, body, { 'content-type': V1, ...headers }).expect(200, { accepted: 1, duplicates: 0 });
    expect(seen).toEqual([e]);
  });

  test('rotation: any configured secret verifies', async () => {
    const { app } = setup({ secrets: ['old-raw-secret', SECRET] });
    const headers = signWebhook(['old-raw-secret'], 'msg_1', Math.floor(Date.now() / 1000), body);
    await post(app, body, { 'content-type': V1, ...headers }).expect(200);
  });

  test('401 for a body changed after signing, a missing signature, or a stale timestamp', async () => {
    const { app, seen } = setup({ secrets: [SECRET] });
    const now = Math.floor(Date.now() / 1000);
    const headers = signWebhook([SECRET], 'msg_1', now, body);
    const changed = await post(app, body.replace('"push"', '"pull"'), { 'content-type': V1, ...headers });
    expect([changed.status, changed.body.error]).toEqual([401, expect.stringMatching(/no webhook-signature matches/)]);
    const missing = await post(app, body, { 'content-type': V1 });
    expect([missing.status, missing.body.error]).toEqual([401, 'missing webhook-id header']);
    const stale = signWebhook([SECRET], 'msg_1', now - 600, body);
    const old = await post(app, body, { 'content-type': V1, ...stale });
    expect([old.status, old.body.error]).toEqual([401, expect.stringMatching(/too old/)]);
    expect(seen).toHaveLength(0);
  });

  test('token and signature together: both are required', async () => {
    const { app } = setup({ token: TOKEN, secrets: [SECRET] });
    const headers = signWebhook([SECRET], 'msg_1', Math.floor(Date.now() / 1000), body);
    await post(app, body, { 'content-type': V1, ...headers }).expect(401);
    await post(app, body, { 'content-type': V1, authorization: `Bearer ${TOKEN}` }).expect(401);
    await post(app, body, { 'content-type': V1, authorization: `Bearer ${TOKEN}`, ...headers }).expect(200);
  });
});

describe('createReceiver handlers', () => {
  test('answers only after async handlers have resolved', async () => {
    const done: string[] = [];
    const app = express();
    app.use(
      createReceiver({
        onEvent: async (e) => {
          await new Promise((r) => setImmediate(r));
          done.push(`event ${e.id}`);
        },
        on: {
          'manifest.push': async (e) => {
            await new Promise((r) => setImmediate(r));
            done.push(`push ${e.id}`);
          },
        },
      }),
    );
    const e = makeEvent('push');
    const res = await request(app).post('/').set('content-type', V1).send(encodeEnvelope([e]));
    expect(res.status).toBe(200);
    expect(done).toEqual([`event ${e.id}`, `push ${e.id}`]);
  });

  test('a failing handler answers 500; the retry resumes at the failed event', async () => {
    const calls: string[] = [];
    const errors: unknown[] = [];
    let failOn: string | undefined;
    const app = express();
    app.use(
      createReceiver({
        onEvent: (e) => {
          calls.push(e.id);
          if (e.id === failOn) throw new Error('database unavailable');
        },
        onError: (err, event) => errors.push([(err as Error).name, event?.id]),
      }),
    );
    const events = makeEvents(3);
    failOn = events[1].id;
    const body = encodeEnvelope(events);
    const first = await request(app).post('/').set('content-type', V1).send(body);
    expect(first.status).toBe(500);
    expect(first.body.error).toBe(`handler failed for event ${events[1].id} (manifest.push): database unavailable`);
    expect(errors).toEqual([['EventHandlerError', events[1].id]]);
    expect(calls).toEqual([events[0].id, events[1].id]);

    failOn = undefined;
    const retry = await request(app).post('/').set('content-type', V1).send(body);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual({ accepted: 2, duplicates: 1 });
    expect(calls).toEqual([events[0].id, events[1].id, events[1].id, events[2].id]);
  });

  test('events of an unlisted kind/action still reach onEvent', async () => {
    const { app, seen, typed } = setup();
    const odd = makeEvent('push', { target: { repository: 'demo/app', tag: 'v1' } }); // "tag.push" is not a real type
    await post(app, encodeEnvelope([odd]), { 'content-type': V1 }).expect(200);
    expect(seen).toEqual([odd]);
    expect(typed).toEqual([]);
  });
});

describe('a retry that overtakes its first delivery', () => {
  test('is answered 503 with Retry-After while the first is handled, and handled after the first fails', async () => {
    let release!: (ok: boolean) => void;
    const first = new Promise<boolean>((r) => (release = r));
    let calls = 0;
    const app = express().use(
      '/hooks',
      createReceiver({
        onEvent: async () => {
          calls++;
          if (calls === 1 && !(await first)) throw new Error('scanner down');
        },
      }),
    );
    const e = makeEvent('push');
    const body = encodeEnvelope([e]);
    const delivery = post(app, body, { 'content-type': V1 }).then((r) => r);
    await waitFor(() => calls === 1, { describe: () => `${calls} handler calls` });
    const retry = await post(app, body, { 'content-type': V1 });
    expect(retry.status).toBe(503);
    expect(retry.headers['retry-after']).toBe('1');
    expect(retry.body.error).toMatch(`event ${e.id} is still being handled`);
    release(false);
    expect((await delivery).status).toBe(500);
    // The event was never handled: the sender's next retry handles it.
    await post(app, body, { 'content-type': V1 }).expect(200, { accepted: 1, duplicates: 0 });
    await post(app, body, { 'content-type': V1 }).expect(200, { accepted: 0, duplicates: 1 });
    expect(calls).toBe(2);
  });

  test('an id twice in one delivery is handled once, not held as in progress', async () => {
    const { app, seen } = setup();
    const e = makeEvent('pull');
    await post(app, encodeEnvelope([e, e]), { 'content-type': V1 }).expect(200, { accepted: 1, duplicates: 1 });
    expect(seen).toHaveLength(1);
  });
});

describe('MemoryDeduplicator', () => {
  test('new, then handling until complete, then done; forget makes it new again', async () => {
    const d = new MemoryDeduplicator();
    expect(await d.claim('a')).toBe('new');
    expect(await d.claim('a')).toBe('handling');
    await d.complete('a');
    expect(await d.claim('a')).toBe('done');
    await d.forget('a');
    expect(await d.claim('a')).toBe('new');
    await d.close();
    await expect(d.claim('b')).rejects.toThrow(ClosedDeduplicatorError);
  });

  test('ids expire after the window', async () => {
    const d = new MemoryDeduplicator({ windowMs: 5 });
    expect(await d.claim('a')).toBe('new');
    await new Promise((r) => setTimeout(r, 20));
    expect(d.size).toBe(0);
    expect(await d.claim('a')).toBe('new');
  });

  test('keeps at most maxEntries, dropping the oldest', async () => {
    const d = new MemoryDeduplicator({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) await d.claim(id);
    expect(d.size).toBe(2);
    expect(await d.claim('c')).toBe('handling');
    expect(await d.claim('a')).toBe('new');
  });

  test('when full, drops ids in the order they were claimed, skipping forgotten ones and counting a reclaimed id from its new claim', async () => {
    const d = new MemoryDeduplicator({ maxEntries: 1000 });
    for (let i = 0; i < 1000; i++) await d.claim(`id-${i}`);
    // id-0 is forgotten then claimed again: it is now the newest, and id-1 the oldest.
    await d.forget('id-0');
    expect(await d.claim('id-0')).toBe('new');
    await d.forget('id-2');
    // Far past the limit, as a busy receiver goes: each claim drops the oldest live id.
    for (let i = 1000; i < 5000; i++) await d.claim(`id-${i}`);
    expect(d.size).toBe(1000);
    // The newest 1000 claims are remembered, and nothing older.
    expect(await d.claim('id-4000')).toBe('handling');
    expect(await d.claim('id-4999')).toBe('handling');
    expect(await d.claim('id-3999')).toBe('new');
  });

  test('keeps the ids of the last maxEntries claims when ids are reclaimed after forget', async () => {
    const d = new MemoryDeduplicator({ maxEntries: 3 });
    for (const id of ['a', 'b', 'c']) await d.claim(id);
    await d.forget('a');
    await d.claim('a');
    await d.claim('d');
    // b (the oldest still remembered) went; a, c and d stay.
    expect(d.size).toBe(3);
    expect(await d.claim('c')).toBe('handling');
    expect(await d.claim('a')).toBe('handling');
    expect(await d.claim('b')).toBe('new');
  });

  test('bad options name the field', () => {
    expect(() => new MemoryDeduplicator({ windowMs: 0 })).toThrow('windowMs must be a positive number, got 0');
    expect(() => new MemoryDeduplicator({ maxEntries: -1 })).toThrow(/maxEntries/);
  });
});

describe('RedisDeduplicator (real Redis at 127.0.0.1:6379)', () => {
  const prefix = `test:dedupe:${randomUUID()}:`;
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis('redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  test('SET NX PX: a claim lives claimMs, a handled id the window', async () => {
    const d = new RedisDeduplicator({ client: redis, prefix, windowMs: 60_000, claimMs: 5_000 });
    expect(await d.claim('a')).toBe('new');
    expect(await d.claim('a')).toBe('handling');
    const claimTtl = await redis.pttl(`${prefix}a`);
    expect(claimTtl).toBeGreaterThan(0);
    expect(claimTtl).toBeLessThanOrEqual(5_000);
    await d.complete('a');
    expect(await d.claim('a')).toBe('done');
    const ttl = await redis.pttl(`${prefix}a`);
    expect(ttl).toBeGreaterThan(5_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await d.forget('a');
    expect(await redis.exists(`${prefix}a`)).toBe(0);
    await d.close();
    // The caller's client is left open.
    expect(await redis.ping()).toBe('PONG');
  });

  test('two receivers (replicas) sharing Redis agree on duplicates', async () => {
    const own1 = new RedisDeduplicator({ url: 'redis://127.0.0.1:6379', prefix });
    const own2 = new RedisDeduplicator({ url: 'redis://127.0.0.1:6379', prefix });
    try {
      const a = setup({ deduplicator: own1 });
      const b = setup({ deduplicator: own2 });
      const e = makeEvent();
      await post(a.app, encodeEnvelope([e]), { 'content-type': V1 }).expect(200, { accepted: 1, duplicates: 0 });
      await post(b.app, encodeEnvelope([e]), { 'content-type': V1 }).expect(200, { accepted: 0, duplicates: 1 });
      expect([a.seen.length, b.seen.length]).toEqual([1, 0]);
    } finally {
      await own1.close();
      await own2.close();
    }
    await expect(own1.claim('x')).rejects.toThrow(ClosedDeduplicatorError);
  });

  test('a failed handler does not leave its id in Redis', async () => {
    const dedupe: Deduplicator = new RedisDeduplicator({ client: redis, prefix });
    const app = express();
    let fail = true;
    app.use(createReceiver({ deduplicator: dedupe, onEvent: () => { if (fail) throw new Error('boom'); } }));
    const e = makeEvent();
    await request(app).post('/').set('content-type', V1).send(encodeEnvelope([e])).expect(500);
    expect(await redis.exists(`${prefix}${e.id}`)).toBe(0);
    fail = false;
    await request(app).post('/').set('content-type', V1).send(encodeEnvelope([e])).expect(200, { accepted: 1, duplicates: 0 });
    expect(await redis.exists(`${prefix}${e.id}`)).toBe(1);
  });

  test('needs a client or a url', () => {
    expect(() => new RedisDeduplicator({})).toThrow('RedisDeduplicator needs a client or a url, got neither');
  });
});
