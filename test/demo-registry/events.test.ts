import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createNotifications, type Event, type Notifications } from '../../lib';
import { TestReceiver } from '../helpers/http-receiver';
import { OCI_MANIFEST, content, pushBlob, pushImage, pushManifest, sha256, tinyImage, type Content } from '../helpers/oci';
import { registryFixture, type RegistryFixture } from './registry-fixture';

const AUTH: [string, string] = ['alice', 'pw'];
const BLOB = 'application/octet-stream';

let receiver: TestReceiver;
let notifications: Notifications;
let f: RegistryFixture;
// supertest serves each request on a new ephemeral port, so URLs are compared without it.
const base = 'http://127.0.0.1:PORT';
let htpasswd: string;
const sentinel = content(BLOB, Buffer.from('sentinel'));

beforeAll(async () => {
  receiver = await new TestReceiver().start();
  notifications = createNotifications(
    { endpoints: [{ name: 'test', url: receiver.url, timeout: '2s', backoff: '10ms', threshold: 3 }] },
    { metricsRegistry: new Registry(), onError: () => undefined },
  );
  htpasswd = path.join(os.tmpdir(), `demo-registry-events-${process.pid}.htpasswd`);
  writeFileSync(htpasswd, execFileSync('/usr/bin/htpasswd', ['-nbB', ...AUTH]));
  f = await registryFixture({ notifications, auth: { realm: 'test', path: htpasswd } });
  await pushBlob(f.client, 'sentinel', sentinel, AUTH);
  await receiver.until((r) => r.events.length === 1);
});

afterAll(async () => {
  await notifications.close();
  await receiver.stop();
  await f.cleanup();
  rmSync(htpasswd, { force: true });
});

/**
 * Makes a sentinel pull and waits for its event; an endpoint delivers in order, so every
 * event of earlier requests has arrived by then. Resolves to the sentinel event's index.
 */
async function flush(): Promise<number> {
  const from = receiver.events.length;
  const head = await f.client.head(`/v2/sentinel/blobs/${sentinel.digest}`).auth(...AUTH);
  expect(head.status).toBe(200);
  const isSentinel = (e: Event) => e.target.repository === 'sentinel' && e.action === 'pull';
  await receiver.until((r) => r.events.slice(from).some(isSentinel));
  return from + receiver.events.slice(from).findIndex(isSentinel);
}

/** Runs `ops` and returns exactly the events they caused, in order. */
async function eventsOf(ops: () => Promise<unknown>): Promise<Event[]> {
  const start = (await flush()) + 1;
  await ops();
  const end = await flush();
  return receiver.events.slice(start, end);
}

const summary = (events: Event[]) =>
  events.map((e) => ({ action: e.action, target: e.target, method: e.request.method, actor: e.actor }));

function blobTarget(repo: string, c: Content, extra: Record<string, string> = {}) {
  return { mediaType: BLOB, size: c.size, digest: c.digest, length: c.size, repository: repo, url: `${base}/v2/${repo}/blobs/${c.digest}`, ...extra };
}

function manifestTarget(repo: string, c: Content, tag?: string) {
  return {
    mediaType: c.mediaType,
    size: c.size,
    digest: c.digest,
    length: c.size,
    repository: repo,
    url: `${base}/v2/${repo}/manifests/${c.digest}`,
    ...(tag ? { tag } : {}),
  };
}

/** Event URLs with the port replaced by PORT. */
function withoutPort(events: ReturnType<typeof summary>) {
  return events.map((e) => ({ ...e, target: { ...e.target, ...(e.target.url ? { url: e.target.url.replace(/:\d+\//, ':PORT/') } : {}) } }));
}

describe('the registry emits the events of the DESIGN.md table', () => {
  it('blob upload, monolithic and chunked: one push each, with the actor', async () => {
    const a = content(BLOB, Buffer.from('monolithic'));
    const b = content(BLOB, Buffer.from('chunked upload'));
    const events = await eventsOf(async () => {
      await pushBlob(f.client, 'ev/blobs', a, AUTH);
      const loc = (await f.client.post('/v2/ev/blobs/blobs/uploads/').auth(...AUTH)).headers.location;
      await f.client.patch(loc).auth(...AUTH).set('Content-Type', BLOB).send(b.bytes.subarray(0, 5));
      await f.client.patch(loc).auth(...AUTH).set('Content-Type', BLOB).send(b.bytes.subarray(5));
      expect((await f.client.get(loc).auth(...AUTH)).status).toBe(204);
      expect((await f.client.put(`${loc}?digest=${b.digest}`).auth(...AUTH)).status).toBe(201);
    });
    expect(withoutPort(summary(events))).toEqual([
      { action: 'push', target: blobTarget('ev/blobs', a), method: 'POST', actor: { name: 'alice' } },
      { action: 'push', target: blobTarget('ev/blobs', b), method: 'PUT', actor: { name: 'alice' } },
    ]);
    expect(events[0].source.addr).toMatch(new RegExp(`^${os.hostname()}:\\d+$`));
    expect(events[0].request.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('manifest push by tag and by digest; GET and HEAD pulls, with the tag when by tag', async () => {
    const img = tinyImage();
    await pushImage(f.client, 'ev/m', 'base', img, AUTH);
    const events = await eventsOf(async () => {
      expect((await pushManifest(f.client, 'ev/m', 'v1', img.manifest, AUTH)).status).toBe(201);
      expect((await pushManifest(f.client, 'ev/m', img.manifest.digest, img.manifest, AUTH)).status).toBe(201);
      expect((await f.client.get('/v2/ev/m/manifests/v1').auth(...AUTH).set('Accept', OCI_MANIFEST)).status).toBe(200);
      expect((await f.client.head('/v2/ev/m/manifests/v1').auth(...AUTH)).status).toBe(200);
      expect((await f.client.head(`/v2/ev/m/manifests/${img.manifest.digest}`).auth(...AUTH)).status).toBe(200);
    });
    const actor = { name: 'alice' };
    expect(withoutPort(summary(events))).toEqual([
      { action: 'push', target: manifestTarget('ev/m', img.manifest, 'v1'), method: 'PUT', actor },
      { action: 'push', target: manifestTarget('ev/m', img.manifest), method: 'PUT', actor },
      { action: 'pull', target: manifestTarget('ev/m', img.manifest, 'v1'), method: 'GET', actor },
      { action: 'pull', target: manifestTarget('ev/m', img.manifest, 'v1'), method: 'HEAD', actor },
      { action: 'pull', target: manifestTarget('ev/m', img.manifest), method: 'HEAD', actor },
    ]);
  });

  it('blob GET and HEAD are pulls', async () => {
    const a = content(BLOB, Buffer.from('pull me'));
    await pushBlob(f.client, 'ev/pull', a, AUTH);
    const events = await eventsOf(async () => {
      await f.client.get(`/v2/ev/pull/blobs/${a.digest}`).auth(...AUTH);
      await f.client.head(`/v2/ev/pull/blobs/${a.digest}`).auth(...AUTH);
    });
    expect(withoutPort(summary(events)).map((e) => [e.action, e.method, e.target])).toEqual([
      ['pull', 'GET', blobTarget('ev/pull', a)],
      ['pull', 'HEAD', blobTarget('ev/pull', a)],
    ]);
  });

  it('a mount that succeeds emits only a mount; one that falls back to an upload emits nothing', async () => {
    const a = content(BLOB, Buffer.from('mount me'));
    await pushBlob(f.client, 'ev/src', a, AUTH);
    const events = await eventsOf(async () => {
      expect((await f.client.post(`/v2/ev/dst/blobs/uploads/?mount=${a.digest}&from=ev/src`).auth(...AUTH)).status).toBe(201);
      const missing = sha256(Buffer.from('not there'));
      expect((await f.client.post(`/v2/ev/dst/blobs/uploads/?mount=${missing}&from=ev/src`).auth(...AUTH)).status).toBe(202);
    });
    expect(withoutPort(summary(events))).toEqual([
      { action: 'mount', target: blobTarget('ev/dst', a, { fromRepository: 'ev/src' }), method: 'POST', actor: { name: 'alice' } },
    ]);
  });

  it('delete by digest: the manifest delete, then one tag delete per tag that pointed at it', async () => {
    const img = tinyImage({ layers: [{ 'del.txt': 'delete me' }] });
    await pushImage(f.client, 'ev/del', 'v1', img, AUTH);
    await pushManifest(f.client, 'ev/del', 'v2', img.manifest, AUTH);
    const events = await eventsOf(async () => {
      expect((await f.client.delete(`/v2/ev/del/manifests/${img.manifest.digest}`).auth(...AUTH)).status).toBe(202);
    });
    expect(summary(events).map((e) => [e.action, e.method, e.target])).toEqual([
      ['delete', 'DELETE', { digest: img.manifest.digest, repository: 'ev/del' }],
      ['delete', 'DELETE', { repository: 'ev/del', tag: 'v1' }],
      ['delete', 'DELETE', { repository: 'ev/del', tag: 'v2' }],
    ]);
    // One request, so one request record.
    expect(new Set(events.map((e) => e.request.id)).size).toBe(1);
  });

  it('delete by tag emits only the tag delete; blob delete emits a delete with the digest', async () => {
    const img = tinyImage({ layers: [{ 't.txt': 'tag' }] });
    await pushImage(f.client, 'ev/tag', 'v1', img, AUTH);
    const events = await eventsOf(async () => {
      expect((await f.client.delete('/v2/ev/tag/manifests/v1').auth(...AUTH)).status).toBe(202);
      expect((await f.client.delete(`/v2/ev/tag/blobs/${img.layers[0].digest}`).auth(...AUTH)).status).toBe(202);
    });
    expect(summary(events).map((e) => [e.action, e.target])).toEqual([
      ['delete', { repository: 'ev/tag', tag: 'v1' }],
      ['delete', { digest: img.layers[0].digest, repository: 'ev/tag' }],
    ]);
  });

  it('failed requests, listings and upload bookkeeping emit nothing', async () => {
    const img = tinyImage({ layers: [{ 'f.txt': 'fail' }] });
    await pushImage(f.client, 'ev/fail', 'v1', img, AUTH);
    const events = await eventsOf(async () => {
      const wrong = sha256(Buffer.from('wrong'));
      expect((await f.client.post(`/v2/ev/fail/blobs/uploads/?digest=${wrong}`).auth(...AUTH).send('data')).status).toBe(400);
      expect((await f.client.get('/v2/ev/fail/manifests/nope').auth(...AUTH)).status).toBe(404);
      expect((await f.client.get('/v2/ev/fail/manifests/v1').auth(...AUTH).set('Accept', 'application/x-other')).status).toBe(404);
      expect((await f.client.get(`/v2/ev/fail/blobs/${img.layers[0].digest}`).auth(...AUTH).set('Range', 'bytes=99999-')).status).toBe(416);
      expect((await pushManifest(f.client, 'ev/fail', 'v2', tinyImage({ layers: [{ 'x': 'missing' }] }).manifest, AUTH)).status).toBe(400);
      expect((await pushManifest(f.client, 'ev/fail', wrong, img.manifest, AUTH)).status).toBe(400);
      expect((await f.client.delete('/v2/ev/fail/manifests/nope').auth(...AUTH)).status).toBe(404);
      expect((await f.client.get('/v2/ev/fail/tags/list').auth(...AUTH)).status).toBe(200);
      expect((await f.client.get('/v2/_catalog').auth(...AUTH)).status).toBe(200);
      const loc = (await f.client.post('/v2/ev/fail/blobs/uploads/').auth(...AUTH)).headers.location;
      expect((await f.client.delete(loc).auth(...AUTH)).status).toBe(204);
      // Without credentials nothing happens, so nothing is reported.
      expect((await f.client.get('/v2/ev/fail/manifests/v1')).status).toBe(401);
    });
    expect(summary(events)).toEqual([]);
  });
});
