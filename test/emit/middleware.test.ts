import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import express, { type Request } from 'express';
import Redis from 'ioredis';
import request from 'supertest';
import { Registry } from 'prom-client';
import { createNotifications, type Notifications } from '../../lib';
import { sha256Digest } from '../../lib/model/manifest';
import { normalizeQueue } from '../../lib/config/normalize';
import { spoolFileOf } from '../../lib/stores/create-stores';
import { TestReceiver } from '../helpers/http-receiver';
import { MemoryRepository } from '../helpers/memory-repository';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { HoldingProxy } from '../helpers/tcp-proxy';
import { sleep, waitFor } from '../helpers/wait';

const manifest = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', size: 2, digest: 'sha256:' + 'b'.repeat(64) }, layers: [] })),
};
const digest = sha256Digest(manifest.payload);

/**
 * A tiny registry-shaped app: enough routes to drive the middleware as a registry would.
 * `before` runs ahead of the middleware; with `mounted: false` the app has routes only,
 * for a parent app that has the middleware.
 */
function makeApp(notifications: Notifications, options: { before?: express.RequestHandler; mounted?: boolean } = {}) {
  const repos = new Map<string, MemoryRepository>();
  const storage = new MemoryRepository('demo/app', repos);
  const app = express();
  if (options.before) app.use(options.before);
  if (options.mounted !== false) app.use(notifications.middleware);
  const repo = (req: Request) => notifications.repository(req, storage);
  app.put('/v2/demo/app/manifests/:tag', async (req, res) => {
    const d = await repo(req).manifests.put(manifest, { tag: req.params.tag });
    res.status(201).set('Docker-Content-Digest', d).end();
  });
  app.get('/v2/demo/app/manifests/:tag', async (req, res) => {
    const m = await repo(req).manifests.get({ tag: req.params.tag });
    res.type(m.mediaType).send(m.payload);
  });
  // Stores the manifest, then fails: Distribution would still send the push event.
  app.put('/v2/demo/app/broken/:tag', async (req, res) => {
    await repo(req).manifests.put(manifest, { tag: req.params.tag });
    res.status(500).json({ errors: [{ code: 'UNKNOWN', message: 'disk full after write' }] });
  });
  // Stores the manifest, then answers only after 10s, unless the client has gone by then.
  const slow = { stored: false, closed: false };
  app.put('/v2/demo/app/slow/:tag', async (req, res) => {
    await repo(req).manifests.put(manifest, { tag: req.params.tag });
    slow.stored = true;
    const answer = setTimeout(() => {
      if (!res.destroyed) res.status(201).end();
    }, 10_000);
    res.on('close', () => {
      clearTimeout(answer);
      slow.closed = true;
    });
  });
  // What a response carries when its route makes no event (`/v2/`), and when it does.
  const attached = (res: express.Response) => ({ closeListeners: res.listenerCount('close'), ownEnd: Object.prototype.hasOwnProperty.call(res, 'end') });
  app.get('/v2/', (_req, res) => void res.json(attached(res)));
  app.get('/v2/demo/app/attached/:tag', async (req, res) => {
    await repo(req).manifests.get({ tag: req.params.tag });
    res.json(attached(res));
  });
  // Waits for its client to go away, and only then stores the manifest.
  const orphan = { waiting: false, stored: false };
  app.put('/v2/demo/app/orphan/:tag', (req, res) => {
    orphan.waiting = true;
    res.on('close', () => {
      void repo(req)
        .manifests.put(manifest, { tag: req.params.tag })
        .then(() => void (orphan.stored = true));
    });
  });
  app.delete('/v2/demo/app/manifests/:digest', async (req, res) => {
    const r = repo(req);
    const tags = storage.tags.lookup(req.params.digest);
    await r.manifests.delete(req.params.digest);
    for (const t of tags) await r.tags.untag(t);
    res.status(202).end();
  });
  app.use((err: Error, _req: Request, res: express.Response, _next: express.NextFunction) => {
    res.status(404).json({ errors: [{ code: 'MANIFEST_UNKNOWN', message: err.message }] });
  });
  return { app, storage, slow, orphan };
}

/** Serves `app` on a loopback port and sends a PUT whose client goes away once `reached` holds; gives back the server. */
async function putThenHangUp(app: express.Express, path: string, reached: () => boolean, describe: () => unknown): Promise<http.Server> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const aborter = new AbortController();
  const pending = fetch(`http://127.0.0.1:${port}${path}`, { method: 'PUT', signal: aborter.signal }).catch((e) => e);
  await waitFor(reached, { describe });
  aborter.abort();
  await pending;
  return server;
}

describe('createNotifications middleware', () => {
  let receiver: TestReceiver;
  let notifications: Notifications;
  const config = () => ({ endpoints: [{ name: 'test', url: receiver.url, backoff: '10ms', headers: { Authorization: ['Bearer secret-token'] } }] });

  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(async () => {
    await notifications?.close();
    await receiver.stop();
  });

  it('sends a push with the request, actor and source records of the request', async () => {
    // No authentication middleware here: the actor comes from the Basic header, as asked.
    notifications = createNotifications(config(), { sourceAddr: 'registry:5000', instanceId: 'i-1', actorFromBasicAuth: true });
    const { app } = makeApp(notifications);
    await request(app)
      .put('/v2/demo/app/manifests/v1')
      .auth('alice', 'pw')
      .set('User-Agent', 'skopeo/1.9.3')
      .set('X-Forwarded-For', 'garbage, 203.0.113.7, 10.0.0.1')
      .expect(201);
    await receiver.until((r) => r.events.length === 1);
    const e = receiver.events[0];
    expect(receiver.requests[0].headers.authorization).toBe('Bearer secret-token');
    expect(e.action).toBe('push');
    expect(e.target).toMatchObject({ repository: 'demo/app', tag: 'v1', digest, size: manifest.payload.length, mediaType: manifest.mediaType });
    expect(e.target.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v2/demo/app/manifests/${digest}$`));
    expect(e.request).toMatchObject({ addr: '203.0.113.7', method: 'PUT', useragent: 'skopeo/1.9.3' });
    expect(e.request.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.actor).toEqual({ name: 'alice' });
    expect(e.source).toEqual({ addr: 'registry:5000', instanceID: 'i-1' });
  });

  it('builds URLs from X-Forwarded-Proto and X-Forwarded-Host, or from the configured base', async () => {
    notifications = createNotifications(config());
    await request(makeApp(notifications).app)
      .get('/v2/demo/app/manifests/v1')
      .expect(404); // nothing pushed yet: no event
    const { app } = makeApp(notifications);
    // Forwarded headers count only behind a proxy the app trusts.
    await request(app).put('/v2/demo/app/manifests/v0').set('Host', 'internal:5000').set('X-Forwarded-Host', 'attacker.example').expect(201);
    await receiver.until((r) => r.events.length === 1);
    expect(receiver.events[0].target.url).toBe(`http://internal:5000/v2/demo/app/manifests/${digest}`);
    app.set('trust proxy', true);
    await request(app).put('/v2/demo/app/manifests/v1').set('X-Forwarded-Proto', 'https').set('X-Forwarded-Host', 'reg.example.com').auth('mallory', 'x').expect(201);
    await receiver.until((r) => r.events.length === 2);
    expect(receiver.events[1].target.url).toBe(`https://reg.example.com/v2/demo/app/manifests/${digest}`);
    // An unverified Basic header is no actor unless the app asks for it.
    expect(receiver.events[1].actor).toEqual({});

    const fixed = createNotifications(config(), { baseUrl: 'https://registry.example.com/' });
    await request(makeApp(fixed).app).put('/v2/demo/app/manifests/v2').set('Forwarded', 'proto=http;host=ignored').expect(201);
    await receiver.until((r) => r.events.length === 3);
    expect(receiver.events[2].target.url).toBe(`https://registry.example.com/v2/demo/app/manifests/${digest}`);
    await fixed.close();
  });

  it('puts the path prefix in event URLs, and gives paths alone with relativeUrls', async () => {
    notifications = createNotifications(config(), { pathPrefix: '/registry/' });
    await request(makeApp(notifications).app).put('/v2/demo/app/manifests/v1').set('Host', 'reg:5000').expect(201);
    await receiver.until((r) => r.events.length === 1);
    expect(receiver.events[0].target.url).toBe(`http://reg:5000/registry/v2/demo/app/manifests/${digest}`);

    const relative = createNotifications(config(), { relativeUrls: true, baseUrl: 'https://ignored.example', pathPrefix: 'registry' });
    await request(makeApp(relative).app).put('/v2/demo/app/manifests/v2').expect(201);
    await receiver.until((r) => r.events.length === 2);
    expect(receiver.events[1].target.url).toBe(`/registry/v2/demo/app/manifests/${digest}`);
    await relative.close();
  });

  it('with no endpoint, lets requests through untouched and builds no events', async () => {
    const none = createNotifications({ endpoints: [{ name: 'off', url: 'http://127.0.0.1:9/', disabled: true }] });
    const { app, storage } = makeApp(none);
    await request(app).put('/v2/demo/app/manifests/v1').expect(201);
    expect(none.endpoints).toHaveLength(0);
    // The repository is handed back as it is: no listener, so no event is ever built.
    expect(none.repository({} as Request, storage)).toBe(storage);
    await expect(none.bridge({} as Request).manifestDeleted('demo/app', digest)).resolves.toBeUndefined();
    await none.close();
  });

  it('sends the event of an operation that took effect even when its request then fails', async () => {
    notifications = createNotifications(config());
    const { app, storage } = makeApp(notifications);
    await request(app).put('/v2/demo/app/broken/v1').expect(500);
    await request(app).put('/v2/demo/app/manifests/v2').expect(201);
    await receiver.until((r) => r.events.length >= 2);
    await notifications.close();
    expect(receiver.events.map((e) => e.target.tag)).toEqual(['v1', 'v2']);
    expect(storage.tagMap.has('v1')).toBe(true);
  });

  it('sends the events of a request whose client went away after its operation took effect', async () => {
    notifications = createNotifications(config());
    const { app, slow } = makeApp(notifications);
    const server = await putThenHangUp(app, '/v2/demo/app/slow/v1', () => slow.stored, () => slow);
    await waitFor(() => slow.closed, { describe: () => slow });
    await request(app).put('/v2/demo/app/manifests/after').expect(201);
    await receiver.until((r) => r.events.length >= 2);
    await notifications.close();
    server.closeAllConnections();
    server.close();
    // The manifest was stored before the client left: its push comes first, then the next request's.
    expect(receiver.events.map((e) => e.target.tag)).toEqual(['v1', 'after']);
  });

  it('adds nothing to the response of a request that makes no event', async () => {
    notifications = createNotifications(config());
    const { app, storage } = makeApp(notifications);
    const bare = makeApp(notifications, { mounted: false }).app;
    const without = (await request(bare).get('/v2/').expect(200)).body;
    expect((await request(app).get('/v2/').expect(200)).body).toEqual(without);
    // The check can tell: a request whose route asked for its repository is held.
    await storage.manifests.put(manifest, { tag: 'v1' }); // straight into storage: no event
    expect((await request(app).get('/v2/demo/app/attached/v1').expect(200)).body).toEqual({ ...without, closeListeners: without.closeListeners + 1 });
  });

  it('sends the event of an operation its route makes after the client went away', async () => {
    notifications = createNotifications(config());
    const { app, orphan } = makeApp(notifications);
    const server = await putThenHangUp(app, '/v2/demo/app/orphan/gone', () => orphan.waiting, () => orphan);
    await waitFor(() => orphan.stored, { describe: () => orphan });
    await receiver.until((r) => r.events.length >= 1);
    server.closeAllConnections();
    server.close();
    expect(receiver.events.map((e) => [e.action, e.target.tag])).toEqual([['push', 'gone']]);
  });

  it('sends events at once when emitImmediately is set, as Distribution does', async () => {
    notifications = createNotifications(config(), { emitImmediately: true });
    const { app } = makeApp(notifications);
    await request(app).put('/v2/demo/app/broken/v1').expect(500);
    await receiver.until((r) => r.events.length === 1);
    expect(receiver.events[0].target.tag).toBe('v1');
  });

  it('sends a manifest delete, then a tag delete per tag, in one request', async () => {
    notifications = createNotifications(config());
    const { app } = makeApp(notifications);
    await request(app).put('/v2/demo/app/manifests/v1').expect(201);
    await request(app).put('/v2/demo/app/manifests/v2').expect(201);
    await request(app).delete(`/v2/demo/app/manifests/${digest}`).expect(202);
    await receiver.until((r) => r.events.length === 5);
    const deletes = receiver.events.slice(2);
    expect(deletes.map((e) => e.target)).toEqual([
      { repository: 'demo/app', digest },
      { repository: 'demo/app', tag: 'v1' },
      { repository: 'demo/app', tag: 'v2' },
    ]);
    expect(new Set(deletes.map((e) => e.request.id)).size).toBe(1);
  });

  it('never fails or delays a response when the endpoint is down', async () => {
    notifications = createNotifications({ endpoints: [{ name: 'dead', url: 'http://127.0.0.1:9/', backoff: '1h', threshold: 1 }], queue: { draintimeout: '10ms' } }, { onError: () => undefined });
    const { app } = makeApp(notifications);
    for (let i = 0; i < 5; i++) await request(app).put(`/v2/demo/app/manifests/t${i}`).expect(201);
    expect(notifications.debugVars()[0].Metrics.Events).toBe(5);
  });

  it('reports stats in Distribution\'s expvar shape, without credentials, and on the caller\'s Prometheus registry', async () => {
    const registry = new Registry();
    notifications = createNotifications(config(), { metricsRegistry: registry });
    const { app } = makeApp(notifications);
    await request(app).put('/v2/demo/app/manifests/v1').expect(201);
    await receiver.until((r) => r.events.length === 1);
    await notifications.close();
    const [vars] = notifications.debugVars();
    expect(vars).toEqual({
      name: 'test',
      url: receiver.url,
      Headers: { Authorization: ['<redacted>'] },
      Timeout: 1e9,
      Threshold: 10,
      Backoff: 1e7,
      IgnoredMediaTypes: [],
      Ignore: { MediaTypes: [], Actions: [] },
      Metrics: { Pending: 0, Events: 1, Successes: 1, Failures: 0, Errors: 0, Statuses: { '200 OK': 1 }, Dropped: 0, DeadLettered: 0, Spooled: 0, State: 'closed' },
    });
    expect(await registry.metrics()).toContain('registry_notifications_events_total{type="Successes",endpoint="test"} 1');
  });

  it('says clearly when a route asks for its repository without the middleware', () => {
    notifications = createNotifications(config());
    expect(() => notifications.repository({} as Request, new MemoryRepository('x'))).toThrow(/middleware is not mounted/);
  });
});

describeWithRedis('a success response and the store (Redis behind a link we can hold)', () => {
  const prefix = uniquePrefix('commit');
  let proxy: HoldingProxy;
  let redis: Redis;
  let notifications: Notifications;
  const stream = `${prefix}:queue:test`;
  const spooldir = mkdtempSync(path.join(os.tmpdir(), 'spool-commit-'));
  afterAll(() => rmSync(spooldir, { recursive: true, force: true }));
  const setup = async (committimeout: string) => {
    proxy = await new HoldingProxy(Number(new URL(REDIS_URL).port) || 6379, new URL(REDIS_URL).hostname).start();
    redis = new Redis(REDIS_URL);
    // The endpoint is down (port 9, discard): events stay in the stream for us to count.
    notifications = createNotifications({
      queue: { type: 'redis', url: `redis://127.0.0.1:${proxy.port}`, prefix, committimeout, draintimeout: '100ms', spooldir },
      endpoints: [{ name: 'test', url: 'http://127.0.0.1:9/', backoff: '1m' }],
    });
    await notifications.ready();
    return makeApp(notifications);
  };
  afterEach(async () => {
    proxy.release();
    await notifications.close();
    await proxy.stop();
    await redis.quit();
    await deletePrefix(prefix);
  });

  /** A PUT's response (`status`) ends only once the held XADD of its event reaches Redis. */
  async function expectEndHeldUntilStored(app: express.Express, storage: MemoryRepository, status = 201): Promise<void> {
    proxy.hold(); // the XADD waits in the proxy
    let answered = false;
    const response = request(app).put('/v2/demo/app/manifests/v1').then((res) => {
      answered = true;
      return res;
    });
    // The route has stored the manifest and ended the response, which now waits on the XADD.
    await waitFor(() => storage.tagMap.has('v1'), { describe: () => [...storage.tagMap.keys()] });
    // Negative window: a response that did not wait for the store would arrive within it.
    await sleep(200);
    expect(answered).toBe(false);
    expect(await redis.xlen(stream)).toBe(0);
    proxy.release();
    expect((await response).status).toBe(status);
    expect(await redis.xlen(stream)).toBe(1);
  }

  it('ends only once the store holds the request’s events, so a crash after the response loses none', async () => {
    const { app, storage } = await setup('30s');
    await expectEndHeldUntilStored(app, storage);
  });

  it('holds the end alike behind a middleware that wrapped the response’s own methods before it', async () => {
    await setup('30s');
    // As a logger does: its own end and writeHead on the response, bound to it.
    const { app, storage } = makeApp(notifications, {
      before: (_req, res, next) => {
        const end = res.end.bind(res);
        const writeHead = res.writeHead.bind(res);
        res.end = ((...args: Parameters<typeof end>) => end(...args)) as typeof res.end;
        res.writeHead = ((...args: Parameters<typeof writeHead>) => writeHead(...args)) as typeof res.writeHead;
        next();
      },
    });
    await expectEndHeldUntilStored(app, storage);
  });

  it('holds the end of a route in a sub-app mounted below the app that has the middleware, and leaves Node’s responses alone', async () => {
    await setup('30s');
    const { end, writeHead } = http.ServerResponse.prototype;
    const parent = express();
    parent.use(notifications.middleware);
    const { app: routes, storage } = makeApp(notifications, { mounted: false });
    parent.use(routes);
    await expectEndHeldUntilStored(parent, storage);
    // The methods that hold are on the app's response prototype, not on every server's.
    expect(http.ServerResponse.prototype.end).toBe(end);
    expect(http.ServerResponse.prototype.writeHead).toBe(writeHead);
  });

  it('holds the end of a response that a sub-app’s route passes, with its error, back to the parent app', async () => {
    await setup('30s');
    const parent = express();
    parent.use(notifications.middleware);
    const storage = new MemoryRepository('demo/app', new Map());
    const routes = express();
    routes.put('/v2/demo/app/manifests/:tag', async (req, _res, next) => {
      await notifications.repository(req, storage).manifests.put(manifest, { tag: req.params.tag });
      next(new Error('disk full after write')); // back in the parent app: its response prototype again
    });
    parent.use(routes);
    parent.use((err: Error, _req: Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ errors: [{ code: 'UNKNOWN', message: err.message }] });
    });
    await expectEndHeldUntilStored(parent, storage, 500);
  });

  it('waits no longer than queue.committimeout, keeps the event in the spool meanwhile, and stores it once', async () => {
    const { app } = await setup('50ms');
    proxy.hold();
    expect((await request(app).put('/v2/demo/app/manifests/v1')).status).toBe(201);
    expect(await redis.xlen(stream)).toBe(0); // answered while the store had not got it
    const spooled = spoolFileOf(normalizeQueue({ type: 'redis', url: `redis://127.0.0.1:${proxy.port}`, prefix, spoolDir: spooldir }), 'test');
    expect(readFileSync(spooled, 'utf8')).toContain('"tag":"v1"'); // on disk before the answer
    proxy.release();
    // The held XADD lands after all: the spool lets the event go without sending it again.
    await waitFor(() => !existsSync(spooled));
    expect(await redis.xlen(stream)).toBe(1);
    expect(notifications.debugVars()[0].Metrics.Spooled).toBe(1);
  });
});
