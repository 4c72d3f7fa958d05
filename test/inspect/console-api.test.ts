import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import request from 'supertest';
import { createNotifications, createStatsRouter, type Notifications, type StatsRouterOptions } from '../../lib';
import { makeEvent } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { waitFor } from '../helpers/wait';

const API = '/debug/notifications/api';

/** A webhook endpoint on loopback that answers `status` with `body`, and records what it got. */
async function answering(status: () => number, body: string) {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(status(), { 'Content-Type': 'text/plain' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the console API', () => {
  let receiver: TestReceiver;
  let notifications: Notifications;
  let app: express.Express;

  async function start(endpoints: object[], routerOptions: StatsRouterOptions = {}, extra: object = {}) {
    notifications = createNotifications({ endpoints, ...extra }, { onError: () => undefined });
    await notifications.ready();
    app = express().use(createStatsRouter(notifications, routerOptions));
  }

  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(async () => {
    await notifications?.close();
    await receiver.stop();
  });

  it('lists endpoints with state, counters, recent buckets and redacted credentials', async () => {
    await start([{ name: 'hooks', url: receiver.url.replace('http://', 'http://user:pw@'), headers: { Authorization: ['Bearer s3cret'], 'X-Team': ['infra'] } }]);
    await notifications.endpoint('hooks').write([makeEvent()]);
    await receiver.until((r) => r.events.length === 1);
    await waitFor(() => notifications.endpoint('hooks').stats.counters.Successes === 1);
    const res = await request(app).get(`${API}/endpoints`).expect(200);
    const [e] = res.body.endpoints;
    expect(e).toMatchObject({
      name: 'hooks',
      state: 'closed',
      paused: false,
      control: null,
      pending: 0,
      oldestPendingAgeSeconds: null,
      deadLetters: 0,
      headers: { Authorization: ['<redacted>'], 'X-Team': ['infra'] },
      counters: { Events: 1, Successes: 1, Statuses: { '200 OK': 1 }, State: 'closed' },
    });
    expect(e.url).not.toContain('pw');
    expect(JSON.stringify(res.body)).not.toContain('s3cret');
    expect(e.recent).toHaveLength(60);
    // The attempt's bucket is the last or, across a 10-second boundary, the one before.
    const busy = e.recent.filter((b: { successes: number }) => b.successes > 0);
    expect(busy).toEqual([expect.objectContaining({ successes: 1, failures: 0, errors: 0 })]);
    expect(e.recent.indexOf(busy[0])).toBeGreaterThanOrEqual(58);
    expect(busy[0].p50Ms).toBeGreaterThan(0);
    expect(e.recent[59].t - e.recent[0].t).toBe(590);
  });

  it('pages the attempts of an endpoint newest first, each with its status, attempt number and the first KiB of the answer', async () => {
    let calls = 0;
    const hook = await answering(() => (++calls <= 2 ? 503 : 200), 'x'.repeat(3000));
    try {
      await start([{ name: 'hooks', url: hook.url, backoff: '1ms', threshold: 1 }]);
      const event = makeEvent();
      await notifications.endpoint('hooks').write([event]);
      await waitFor(() => notifications.endpoint('hooks').stats.counters.Successes === 1);
      const first = await request(app).get(`${API}/endpoints/hooks/attempts?limit=2`).expect(200);
      expect(first.body.attempts.map((a: { attempt: number; status: number }) => [a.attempt, a.status])).toEqual([
        [3, 200],
        [2, 503],
      ]);
      const [a] = first.body.attempts;
      expect(a).toMatchObject({ endpoint: 'hooks', eventIds: [event.id], error: null, test: false });
      expect(a.response).toBe('x'.repeat(1024));
      expect(new Date(a.time).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(a.latencyMs).toBeGreaterThan(0);
      const rest = await request(app).get(`${API}/endpoints/hooks/attempts?limit=2&cursor=${first.body.next}`).expect(200);
      expect(rest.body).toEqual({ attempts: [expect.objectContaining({ attempt: 1, status: 503 })], next: null });
    } finally {
      await hook.stop();
    }
  });

  it("cuts the endpoint's credentials out of an answer that echoes them", async () => {
    const echo = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400).end(`bad request; you sent Authorization: ${req.headers.authorization} and X-Api-Key: ${req.headers['x-api-key']}`));
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/`;
      await start([{ name: 'echo', url, maxretries: 0, headers: { Authorization: ['Bearer s3cret-t0ken'], 'X-Api-Key': ['k3y-value'] } }]);
      await notifications.endpoint('echo').write([makeEvent()]);
      await waitFor(() => notifications.endpoint('echo').stats.counters.DeadLettered === 1);
      const res = await request(app).get(`${API}/endpoints/echo/attempts`).expect(200);
      expect(res.body.attempts[0].response).toBe('bad request; you sent Authorization: <redacted> and X-Api-Key: <redacted>');
    } finally {
      echo.closeAllConnections();
      await new Promise((r) => echo.close(r));
    }
  });

  it('records an attempt that got no answer with its error', async () => {
    const closed = await answering(() => 200, '');
    await closed.stop(); // nothing listens there now
    await start([{ name: 'down', url: closed.url, maxretries: 0 }]);
    await notifications.endpoint('down').write([makeEvent()]);
    await waitFor(() => notifications.endpoint('down').stats.counters.DeadLettered === 1);
    const res = await request(app).get(`${API}/endpoints/down/attempts`).expect(200);
    expect(res.body.attempts[0]).toMatchObject({ status: null, response: null, attempt: 1 });
    expect(res.body.attempts[0].error).toMatch(/ECONNREFUSED/);
  });

  it('finds events by digest, repository, tag, action and state, and shows one event with its attempts', async () => {
    await start([
      { name: 'a', url: receiver.url },
      { name: 'b', url: receiver.url },
    ]);
    const pushed = makeEvent('push');
    const pulled = makeEvent('pull', { target: { ...makeEvent().target, repository: 'other/app', tag: 'v9' } });
    await notifications.endpoint('a').write([pushed]);
    await notifications.endpoint('b').write([pushed, pulled]);
    await receiver.until((r) => r.events.length === 3);
    await waitFor(() => notifications.endpoints.every((e) => e.stats.counters.Pending === 0));
    const search = async (q: string) => (await request(app).get(`${API}/events?${q}`).expect(200)).body;
    const byDigest = await search(`digest=${encodeURIComponent(pushed.target.digest!)}`);
    expect(byDigest.events.map((e: { endpoint: string }) => e.endpoint).sort()).toEqual(['a', 'b']);
    expect(byDigest.events[0]).toMatchObject({ id: pushed.id, action: 'push', repository: 'demo/app', tag: 'v1', state: 'delivered', attempts: 1 });
    expect((await search('repository=other/app')).events.map((e: { id: string }) => e.id)).toEqual([pulled.id]);
    expect((await search('endpoint=b&tag=v9')).events.map((e: { id: string }) => e.id)).toEqual([pulled.id]);
    expect((await search('action=pull')).events).toHaveLength(1);
    expect((await search('state=pending')).events).toHaveLength(0);
    const page1 = await search('endpoint=b&limit=1');
    expect(page1.events.map((e: { id: string }) => e.id)).toEqual([pulled.id]);
    expect((await search(`endpoint=b&limit=1&cursor=${page1.next}`)).events.map((e: { id: string }) => e.id)).toEqual([pushed.id]);

    const one = await request(app).get(`${API}/events/${pushed.id}`).expect(200);
    expect(one.body.event).toMatchObject({ id: pushed.id, action: 'push', target: { digest: pushed.target.digest } });
    expect(one.body.deliveries).toEqual([
      { endpoint: 'a', state: 'delivered', attempts: [expect.objectContaining({ status: 200, eventIds: [pushed.id], attempt: 1 })] },
      { endpoint: 'b', state: 'delivered', attempts: [expect.objectContaining({ status: 200, eventIds: [pushed.id, pulled.id] })] },
    ]);
  });

  it('pauses and resumes an endpoint: events wait in the queue meanwhile, and stats show it', async () => {
    await start([{ name: 'hooks', url: receiver.url }]);
    const paused = await request(app).post(`${API}/endpoints/hooks/pause`).send({ reason: 'receiver maintenance' }).expect(200);
    expect(paused.body).toMatchObject({ endpoint: 'hooks', state: 'paused', control: { state: 'paused', reason: 'receiver maintenance' } });
    await notifications.endpoint('hooks').write([makeEvent()]);
    const listed = await request(app).get(`${API}/endpoints`).expect(200);
    expect(listed.body.endpoints[0]).toMatchObject({ state: 'paused', paused: true, pending: 1 });
    expect(listed.body.endpoints[0].oldestPendingAgeSeconds).toBeGreaterThanOrEqual(0);
    const vars = await request(app).get('/debug/vars').expect(200);
    expect(vars.body.registry.notifications.endpoints[0].Metrics.State).toBe('paused');
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toContain('registry_notifications_endpoint_state{endpoint="hooks",state="paused"} 1');
    expect(metrics.text).toMatch(/registry_notifications_oldest_pending_seconds\{endpoint="hooks"\} \d/);
    expect(receiver.requests).toHaveLength(0);

    const resumed = await request(app).post(`${API}/endpoints/hooks/resume`).send({}).expect(200);
    expect(resumed.body).toMatchObject({ endpoint: 'hooks', state: 'closed', control: null });
    await receiver.until((r) => r.events.length === 1);
  });

  it('sends a test event at once, records its attempt as a test, and keeps it out of the queue and the event log', async () => {
    await start([{ name: 'hooks', url: receiver.url }]);
    await notifications.endpoint('hooks').pause();
    const res = await request(app).post(`${API}/endpoints/hooks/test`).send({ action: 'push' }).expect(200);
    expect(res.body).toMatchObject({ endpoint: 'hooks', ok: true, attempt: { status: 200, test: true, attempt: 1, endpoint: 'hooks' } });
    expect(receiver.events).toHaveLength(1);
    expect(receiver.events[0]).toMatchObject({ action: 'push', target: { repository: 'notifications-test', tag: 'test' } });
    expect(res.body.attempt.eventIds).toEqual([receiver.events[0].id]);
    const attempts = await request(app).get(`${API}/endpoints/hooks/attempts`).expect(200);
    expect(attempts.body.attempts).toEqual([expect.objectContaining({ test: true, eventIds: [receiver.events[0].id] })]);
    expect((await request(app).get(`${API}/events?repository=notifications-test`).expect(200)).body.events).toEqual([]);
    expect(await notifications.endpoint('hooks').queue.pending()).toBe(0);
    expect(notifications.endpoint('hooks').stats.counters.Events).toBe(0);

    receiver.respond = () => 500;
    const failed = await request(app).post(`${API}/endpoints/hooks/test`).send({ action: 'delete' }).expect(200);
    expect(failed.body).toMatchObject({ ok: false, attempt: { status: 500, test: true } });
    await request(app).post(`${API}/endpoints/hooks/test`).send({ action: 'launch' }).expect(400);
  });

  it('replays by ids, every dead letter, or a time range, ids unchanged, at the end of the queue', async () => {
    await start([{ name: 'hooks', url: receiver.url, maxretries: 0 }]);
    const delivered = makeEvent();
    await notifications.endpoint('hooks').write([delivered]);
    await receiver.until((r) => r.events.length === 1);
    receiver.respond = () => 500;
    const dead = makeEvent();
    await notifications.endpoint('hooks').write([dead]);
    await waitFor(() => notifications.endpoint('hooks').stats.counters.DeadLettered === 1);
    receiver.respond = () => 200;
    const search = async () => (await request(app).get(`${API}/events?state=dead-lettered`).expect(200)).body.events;
    await waitFor(async () => (await search()).length === 1);

    const byId = await request(app).post(`${API}/endpoints/hooks/replay`).send({ ids: [delivered.id] }).expect(200);
    expect(byId.body).toEqual({ endpoint: 'hooks', replayed: 1, ids: [delivered.id], missing: [] });
    await receiver.until((r) => r.events.length === 2);
    expect(receiver.events[1].id).toBe(delivered.id);

    const letters = await request(app).post(`${API}/endpoints/hooks/replay`).send({ deadLetters: true }).expect(200);
    expect(letters.body).toEqual({ endpoint: 'hooks', replayed: 1, ids: [dead.id] });
    await receiver.until((r) => r.events.length === 3);
    expect(receiver.events[2].id).toBe(dead.id);
    await waitFor(async () => (await search()).length === 0);

    const range = await request(app)
      .post(`${API}/endpoints/hooks/replay`)
      .send({ from: new Date(Date.now() - 60_000).toISOString(), to: new Date(Date.now() + 1000).toISOString() })
      .expect(200);
    expect(range.body.ids).toEqual([delivered.id, dead.id]);
    await receiver.until((r) => r.events.length === 5);
    expect(receiver.events.slice(3).map((e) => e.id)).toEqual([delivered.id, dead.id]);

    expect((await request(app).post(`${API}/endpoints/hooks/replay`).send({ ids: ['nope'] }).expect(404)).body.error).toMatch(/nope/);
    await request(app).post(`${API}/endpoints/hooks/replay`).send({ ids: [delivered.id], deadLetters: true }).expect(400);
    await request(app).post(`${API}/endpoints/hooks/replay`).send({ from: 'yesterday' }).expect(400);
  });

  it('refuses what it cannot answer with a JSON error: unknown endpoint or event 404, bad cursor, limit or filter 400', async () => {
    await start([{ name: 'hooks', url: receiver.url }]);
    const err = async (method: 'get' | 'post', url: string, status: number) => {
      const req = method === 'get' ? request(app).get(url) : request(app).post(url).send({});
      const res = await req.expect(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      return res.body.error as string;
    };
    expect(await err('get', `${API}/endpoints/nope/attempts`, 404)).toBe('no endpoint named "nope"; endpoints: hooks');
    expect(await err('post', `${API}/endpoints/nope/pause`, 404)).toMatch(/no endpoint named "nope"/);
    expect(await err('get', `${API}/events?endpoint=nope`, 404)).toMatch(/no endpoint named/);
    expect(await err('get', `${API}/events/0190a0a0-0000-7000-8000-000000000000`, 404)).toMatch(/no event/);
    expect(await err('get', `${API}/endpoints/hooks/attempts?cursor=xyz`, 400)).toMatch(/cursor "xyz"/);
    expect(await err('get', `${API}/events?cursor=-1`, 400)).toMatch(/cursor/);
    expect(await err('get', `${API}/endpoints/hooks/attempts?limit=0`, 400)).toMatch(/limit must be a whole number from 1 to 500/);
    expect(await err('get', `${API}/events?state=lost`, 400)).toMatch(/state must be one of pending, delivered, dead-lettered/);
    expect(await err('get', `${API}/events?action=fly`, 400)).toMatch(/action must be one of/);
  });

  it('refuses changes that are not JSON or come from another origin, on the API and on the dead-letter replay', async () => {
    await start([{ name: 'hooks', url: receiver.url }]);
    for (const url of [`${API}/endpoints/hooks/pause`, `${API}/endpoints/hooks/replay`, '/debug/notifications/deadletters/replay?endpoint=hooks']) {
      // A plain HTML form post: urlencoded, or no body at all.
      const form = await request(app).post(url).type('form').send('deadLetters=true').expect(403);
      expect(form.body.error).toMatch(/Content-Type: application\/json/);
      await request(app).post(url).expect(403);
      await request(app).post(url).set('Content-Type', 'text/plain').send('{}').expect(403);
      // JSON from another page's script.
      const cross = await request(app).post(url).set('Origin', 'https://evil.example').send({}).expect(403);
      expect(cross.body.error).toMatch(/another origin \(https:\/\/evil\.example\)/);
      await request(app).post(url).set('Sec-Fetch-Site', 'cross-site').send({}).expect(403);
      // Malformed JSON: a JSON error, no stack trace, no file paths.
      const bad = await request(app).post(url).set('Content-Type', 'application/json').send('{"ids": [').expect(400);
      expect(bad.headers['content-type']).toMatch(/^application\/json/);
      expect(bad.body).toEqual({ error: 'malformed JSON body' });
      expect(bad.text).not.toMatch(/node_modules|\/work\/|at /);
    }
    expect(notifications.endpoint('hooks').stats.counters.State).toBe('closed');
    // The same origin passes.
    const host = '127.0.0.1:5002';
    await request(app).post(`${API}/endpoints/hooks/pause`).set('Host', host).set('Origin', `http://${host}`).send({}).expect(200);
    await request(app).post('/debug/notifications/deadletters/replay?endpoint=hooks').send({}).expect(200);
  });

  describe('with credentials configured', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'console-auth-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const everyRoute = ['/debug/vars', '/metrics', '/debug/notifications', '/debug/notifications/deadletters?endpoint=hooks', `${API}/endpoints`, `${API}/stream`];

    it('a token: 401 with WWW-Authenticate without it; Bearer or Basic with the token as password passes', async () => {
      await start([{ name: 'hooks', url: receiver.url }], { auth: { token: 't0ken' } });
      for (const url of everyRoute) {
        const res = await request(app).get(url).expect(401);
        expect(res.headers['www-authenticate']).toBe('Basic realm="registry notifications", charset="UTF-8"');
        expect(res.body.error).toMatch(/credentials required/);
      }
      await request(app).get(`${API}/endpoints`).set('Authorization', 'Bearer wrong').expect(401);
      await request(app).post(`${API}/endpoints/hooks/pause`).send({}).expect(401);
      await request(app).get(`${API}/endpoints`).set('Authorization', 'Bearer t0ken').expect(200);
      await request(app).get('/debug/vars').auth('anyone', 't0ken').expect(200);
      await request(app).post(`${API}/endpoints/hooks/pause`).auth('anyone', 't0ken').send({}).expect(200);
    });

    it('an htpasswd file of bcrypt entries, read again when it changes', async () => {
      const file = path.join(dir, 'htpasswd');
      writeFileSync(file, `alice:${bcrypt.hashSync('pw', 4)}\nbob:{SHA}notbcrypt\n`);
      await start([{ name: 'hooks', url: receiver.url }], { auth: { htpasswd: file } });
      await request(app).get('/debug/vars').expect(401);
      await request(app).get('/debug/vars').auth('alice', 'wrong').expect(401);
      await request(app).get('/debug/vars').auth('bob', 'notbcrypt').expect(401);
      await request(app).get('/debug/vars').auth('alice', 'pw').expect(200);
      await request(app).get(`${API}/endpoints`).auth('alice', 'pw').expect(200);
      writeFileSync(file, `carol:${bcrypt.hashSync('pw2', 4)}\n`);
      await waitFor(async () => (await request(app).get('/debug/vars').auth('carol', 'pw2')).status === 200);
      await request(app).get('/debug/vars').auth('alice', 'pw').expect(401);
    });
  });

  it('streams endpoint snapshots and each attempt, and leaves no listener behind when the client goes', async () => {
    await start([{ name: 'hooks', url: receiver.url }]);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const frames: { event: string; data: unknown }[] = [];
      let text = '';
      const req = http.get({ host: '127.0.0.1', port, path: `${API}/stream` });
      const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const frame = text.slice(0, end);
          text = text.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event && data) frames.push({ event, data: JSON.parse(data) });
        }
      });
      await waitFor(() => frames.some((f) => f.event === 'endpoints'));
      expect(frames[0].data).toMatchObject({ endpoints: [{ name: 'hooks', state: 'closed' }] });
      expect(notifications.deliveryLog.listenerCount).toBe(1);
      const event = makeEvent();
      await notifications.endpoint('hooks').write([event]);
      await waitFor(() => frames.some((f) => f.event === 'attempt'));
      expect(frames.find((f) => f.event === 'attempt')!.data).toMatchObject({ endpoint: 'hooks', eventIds: [event.id], status: 200 });
      // A snapshot after the attempt shows it counted.
      await waitFor(() => frames.some((f) => f.event === 'endpoints' && (f.data as { endpoints: { counters: { Successes: number } }[] }).endpoints[0].counters.Successes === 1));
      req.destroy();
      await waitFor(() => notifications.deliveryLog.listenerCount === 0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
