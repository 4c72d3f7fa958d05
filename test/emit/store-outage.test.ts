// A Redis outage under load: requests keep coming while the link to Redis is cut for 5 s.
// Every event of every success response must reach the endpoint once Redis is back, in
// order; with `queue.onstoreerror: fail`, the requests the store could not serve get 503.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express, { type Request } from 'express';
import request from 'supertest';
import { createNotifications, type Notifications } from '../../lib';
import { TestReceiver } from '../helpers/http-receiver';
import { MemoryRepository } from '../helpers/memory-repository';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { FaultProxy } from '../helpers/fault-proxy';
import { sleep } from '../helpers/wait';
import { RegistryProcess } from '../helpers/registry-process';
import { pushImageOverHttp } from '../../demo-registry/sample-image';

const manifest = (tag: string) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', size: 2, digest: 'sha256:' + 'b'.repeat(64) }, layers: [], annotations: { tag } })),
});

/** A registry-shaped app: PUT a manifest by tag, answered 201 once stored. */
function makeApp(notifications: Notifications) {
  const storage = new MemoryRepository('demo/app');
  const app = express();
  app.use(notifications.middleware);
  app.put('/v2/demo/app/manifests/:tag', async (req: Request<{ tag: string }>, res) => {
    const d = await notifications.repository(req, storage).manifests.put(manifest(req.params.tag), { tag: req.params.tag });
    res.status(201).set('Docker-Content-Digest', d).end();
  });
  return { app, storage };
}

interface Answer {
  tag: string;
  status: number;
  ms: number;
  body: string;
  retryAfter?: string;
}

/** One client pushing tags `<client>-0`, `<client>-1`, … one after the other until `stop()` says so. */
async function pushUntil(app: express.Express, client: string, stop: () => boolean): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; !stop(); i++) {
    const tag = `${client}-${i}`;
    const started = performance.now();
    const res = await request(app).put(`/v2/demo/app/manifests/${tag}`);
    answers.push({ tag, status: res.status, ms: performance.now() - started, body: res.text, retryAfter: res.headers['retry-after'] });
    await sleep(5);
  }
  return answers;
}

describeWithRedis('a 5 s Redis outage under load', () => {
  let proxy: FaultProxy;
  let receiver: TestReceiver;
  let notifications: Notifications | undefined;
  let prefix: string;
  let spooldir: string;
  const errors: string[] = [];

  beforeEach(async () => {
    prefix = uniquePrefix('outage');
    spooldir = mkdtempSync(path.join(os.tmpdir(), 'spool-'));
    proxy = await new FaultProxy(Number(new URL(REDIS_URL).port) || 6379, new URL(REDIS_URL).hostname).start();
    receiver = await new TestReceiver().start();
    errors.length = 0;
  });
  afterEach(async () => {
    proxy.restore();
    await notifications?.close();
    await proxy.stop();
    await receiver.stop();
    await deletePrefix(prefix);
    rmSync(spooldir, { recursive: true, force: true });
  });

  const start = async (queue: object) => {
    notifications = createNotifications(
      {
        queue: { type: 'redis', url: `redis://127.0.0.1:${proxy.port}`, prefix, committimeout: '250ms', spooldir, ...queue },
        endpoints: [{ name: 'hook', url: receiver.url, backoff: '20ms', threshold: 1 }],
      },
      { onError: (err, context) => errors.push(`${context}: ${err.message}`) },
    );
    await notifications.ready();
    return makeApp(notifications);
  };

  /** Pushes for 1 s, cuts Redis for 5 s while pushing, restores it and pushes 1 s more. */
  const pushThroughOutage = async (app: express.Express) => {
    let done = false;
    const clients = ['a', 'b', 'c'].map((c) => pushUntil(app, c, () => done));
    await sleep(1000);
    proxy.cut();
    await sleep(5000);
    proxy.restore();
    await sleep(1000);
    done = true;
    return (await Promise.all(clients)).flat();
  };

  it('loses no event of a success response and keeps each client\'s order', async () => {
    const { app } = await start({});
    const answers = await pushThroughOutage(app);
    const ok = answers.filter((a) => a.status === 201);
    expect(ok).toHaveLength(answers.length);
    expect(ok.length).toBeGreaterThan(30);
    await receiver.until((r) => new Set(r.events.map((e) => e.target.tag)).size >= ok.length);
    const received = receiver.events.map((e) => e.target.tag!);
    expect([...new Set(received)].sort()).toEqual(ok.map((a) => a.tag).sort());
    // Each client's pushes arrive in the order it made them (first arrival of each tag).
    for (const client of ['a', 'b', 'c']) {
      const order = [...new Set(received)].filter((t) => t.startsWith(`${client}-`)).map((t) => Number(t.slice(2)));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
    // The store could not take them during the cut: they waited in the spool.
    expect(notifications!.debugVars()[0].Metrics.Spooled).toBeGreaterThan(0);
    expect(errors.some((e) => /keeping them in .*hook-[0-9a-f]{12}\.spool until it can/.test(e))).toBe(true);
  }, 30_000);

  it('with onstoreerror: fail, answers 503 to the requests whose events it could not store, and sends none of theirs', async () => {
    const { app } = await start({ onstoreerror: 'fail' });
    const answers = await pushThroughOutage(app);
    const ok = answers.filter((a) => a.status === 201);
    const failed = answers.filter((a) => a.status !== 201);
    expect(failed.length).toBeGreaterThan(0);
    for (const a of failed) {
      expect(a.status).toBe(503);
      expect(a.retryAfter).toBe('1');
      expect(JSON.parse(a.body)).toEqual({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: expect.any(String) }] });
    }
    await receiver.until((r) => new Set(r.events.map((e) => e.target.tag)).size >= ok.length);
    // Negative window: the appends that timed out reach Redis once it is back; their events must not go out.
    await sleep(500);
    const received = receiver.events.map((e) => e.target.tag!);
    expect(received.filter((t) => failed.some((a) => a.tag === t))).toEqual([]);
    expect([...new Set(received)].sort()).toEqual(ok.map((a) => a.tag).sort());
    expect(notifications!.debugVars()[0].Metrics.Spooled).toBe(0);
  }, 30_000);
});

describeWithRedis('the demo registry killed during a Redis outage', () => {
  let dir: string;
  let prefix: string;
  let proxy: FaultProxy;
  let receiver: TestReceiver;
  const running: RegistryProcess[] = [];
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'spool-kill-'));
    prefix = uniquePrefix('spoolkill');
    proxy = await new FaultProxy(Number(new URL(REDIS_URL).port) || 6379, new URL(REDIS_URL).hostname).start();
    receiver = await new TestReceiver().start();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
    await proxy.stop();
    await receiver.stop();
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers, after a restart, the events of the pushes it answered while Redis was away', async () => {
    const config = {
      version: 0.1,
      http: { addr: '127.0.0.1:0' },
      storage: { filesystem: { rootdirectory: path.join(dir, 'registry') } },
      notifications: {
        queue: { type: 'redis', url: `redis://127.0.0.1:${proxy.port}`, prefix, spooldir: path.join(dir, 'spool') },
        endpoints: [{ name: 'hook', url: receiver.url, backoff: '50ms', threshold: 1 }],
      },
    };
    const first = await RegistryProcess.start(dir, config);
    running.push(first);
    proxy.cut();
    const { digest } = await pushImageOverHttp(first.url, 'demo/app', 'v1'); // two blobs and a manifest: three 201s
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    proxy.restore();

    const second = await RegistryProcess.start(dir, config);
    running.push(second);
    await receiver.until((r) => r.events.length >= 3);
    await sleep(300); // anything sent twice would arrive by now
    expect(receiver.events.map((e) => `${e.action} ${e.target.mediaType}${e.target.tag ? ' ' + e.target.tag : ''}`)).toEqual([
      'push application/octet-stream',
      'push application/octet-stream',
      'push application/vnd.oci.image.manifest.v1+json v1',
    ]);
    expect(receiver.events[2].target.digest).toBe(digest);
  }, 60_000);
});
