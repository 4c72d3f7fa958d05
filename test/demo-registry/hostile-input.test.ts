// The demo registry against clients and operators that do not play along: races between
// deletes, password guessing, slow and oversized bodies, shutdown behind a slow client,
// and failures whose details must not reach the client. Everything runs over real sockets.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { createNotifications, type Event, type Notifications } from '../../lib';
import { createRegistryApp, type RegistryAppOptions } from '../../demo-registry/app';
import { BcryptPool } from '../../demo-registry/bcrypt-pool';
import { parseRegistryConfig } from '../../demo-registry/config';
import { DEFAULT_LOG_CONFIG, Logger } from '../../demo-registry/log';
import { startRegistry } from '../../demo-registry/main';
import { FilesystemStorage } from '../../demo-registry/storage';
import { TestReceiver } from '../helpers/http-receiver';
import { waitFor } from '../helpers/wait';
import { content, tinyImage, writeOciLayout } from '../helpers/oci';
import { spawnTs } from '../helpers/registry-process';
import { makeCertificates } from './certificates';

const BLOB = 'application/octet-stream';
const SKOPEO = '/usr/bin/skopeo';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The registry app on a real HTTP server on 127.0.0.1. */
async function serve(options: Omit<RegistryAppOptions, 'storage'> & { root: string }) {
  const storage = new FilesystemStorage(options.root);
  await storage.init();
  const app = createRegistryApp({ storage, deleteEnabled: true, ...options });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url,
    storage,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Pushes an image (blobs monolithic, manifest by `tag`) with fetch; throws unless each step succeeds. */
async function push(url: string, name: string, tag: string, image = tinyImage()): Promise<typeof image> {
  for (const blob of image.blobs) {
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', body: blob.bytes });
    if (res.status !== 201) throw new Error(`blob push: ${res.status} ${await res.text()}`);
  }
  const res = await fetch(`${url}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': image.manifest.mediaType },
    body: image.manifest.bytes,
  });
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`);
  return image;
}

describe('item 7: a manifest DELETE by digest racing tag DELETEs', () => {
  let receiver: TestReceiver;
  let notifications: Notifications;
  let registry: Awaited<ReturnType<typeof serve>>;
  const sentinel = content(BLOB, Buffer.from('sentinel of the race test'));

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    notifications = createNotifications(
      { endpoints: [{ name: 'race', url: receiver.url, timeout: '2s', backoff: '10ms', threshold: 3 }] },
      { metricsRegistry: new Registry(), onError: () => undefined },
    );
    registry = await serve({ root: path.join(dir, 'race'), notifications });
  });
  afterAll(async () => {
    await registry.close();
    await notifications.close();
    await receiver.stop();
  });

  /** Every event caused before now: a sentinel pull is delivered after them (an endpoint delivers in order). */
  async function eventsSoFar(): Promise<Event[]> {
    if ((await fetch(`${registry.url}/v2/sentinel/blobs/uploads/?digest=${sentinel.digest}`, { method: 'POST', body: sentinel.bytes })).status !== 201) {
      throw new Error('sentinel push failed');
    }
    const before = receiver.events.length;
    await fetch(`${registry.url}/v2/sentinel/blobs/${sentinel.digest}`, { method: 'HEAD' });
    const isSentinel = (e: Event) => e.target.repository === 'sentinel' && e.action === 'pull';
    await receiver.until((r) => r.events.slice(before).some(isSentinel));
    return receiver.events.filter((e) => e.target.repository !== 'sentinel');
  }

  it.each([1, 2, 3, 4])('run %i: 202 with the manifest delete and one event per tag, whoever removed it', async (run) => {
    const name = `race/r${run}`;
    const image = await push(registry.url, name, 't000', tinyImage({ layers: [{ 'run.txt': `run ${run}` }] }));
    const digest = image.manifest.digest;
    const tags = Array.from({ length: 600 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    const repo = registry.storage.repository(name);
    for (const tag of tags.slice(1)) await repo.tags.tag(tag, digest);
    const before = (await eventsSoFar()).length;

    // Two clients deleting tags one after the other, from the last tag backwards, while the
    // digest DELETE walks through the tags: some of theirs go before it, some during, some after.
    const racing = tags.filter((_, i) => i % 10 === 9).reverse();
    const del = (ref: string) => fetch(`${registry.url}/v2/${name}/manifests/${ref}`, { method: 'DELETE' }).then((r) => r.status);
    const tagStatuses: number[] = [];
    const client = async (mine: string[]) => {
      for (const tag of mine) tagStatuses[racing.indexOf(tag)] = await del(tag);
    };
    const [digestStatus] = await Promise.all([
      del(digest),
      client(racing.filter((_, i) => i % 2 === 0)),
      client(racing.filter((_, i) => i % 2 === 1)),
    ]);

    require("fs").appendFileSync("/tmp/dist.txt", tagStatuses.join(",") + "\n");
    expect(digestStatus).toBe(202);
    expect(await repo.tags.list()).toEqual([]);
    expect(await repo.manifests.has(digest)).toBe(false);

    const events = (await eventsSoFar()).slice(before);
    expect(events.every((e) => e.action === 'delete' && e.target.repository === name)).toBe(true);
    const manifestDeletes = events.filter((e) => e.target.digest !== undefined);
    expect(manifestDeletes.map((e) => [e.target.digest, e.target.tag])).toEqual([[digest, undefined]]);
    // Each tag removed exactly once, so each has exactly one event ...
    const tagEvents = events.filter((e) => e.target.tag !== undefined);
    expect(tagEvents.map((e) => e.target.tag!).sort()).toEqual(tags);
    // ... from the request that removed it: a tag DELETE answered 202 did, one answered 404 left it to the digest DELETE.
    const byDigestDelete = new Set(tagEvents.filter((e) => e.request.id === manifestDeletes[0].request.id).map((e) => e.target.tag));
    expect(racing.map((tag, i) => [tag, tagStatuses[i]])).toEqual(racing.map((tag) => [tag, byDigestDelete.has(tag) ? 404 : 202]));
    expect(tagStatuses.filter((s) => s === 202).length + byDigestDelete.size).toBe(tags.length);
  });

  it('answers 404 and sends nothing when there was nothing to delete', async () => {
    const name = 'race/gone';
    const image = await push(registry.url, name, 'only');
    const before = (await eventsSoFar()).length;
    const statuses = await Promise.all(
      [0, 1, 2].map(() => fetch(`${registry.url}/v2/${name}/manifests/${image.manifest.digest}`, { method: 'DELETE' }).then((r) => r.status)),
    );
    // Three at once: one removed the revision and its tag, the others found nothing.
    expect([...statuses].sort()).toEqual([202, 404, 404]);
    const events = (await eventsSoFar()).slice(before);
    expect(events.map((e) => [e.action, e.target.digest ?? e.target.tag])).toEqual([
      ['delete', image.manifest.digest],
      ['delete', 'only'],
    ]);
  });
});

describe('item 16: error bodies never carry paths or stacks', () => {
  it('a 500 from the storage says "unknown error" and logs the rest', async () => {
    const root = path.join(dir, 'paths');
    const logged: Error[] = [];
    const registry = await serve({ root, onInternalError: (err) => logged.push(err) });
    try {
      // Where the uploads folder should be, a file: starting an upload fails in the filesystem.
      await push(registry.url, 'broken', 'v1');
      rmSync(path.join(root, 'repositories', 'broken', '_uploads'), { recursive: true, force: true });
      writeFileSync(path.join(root, 'repositories', 'broken', '_uploads'), 'not a folder');
      const res = await fetch(`${registry.url}/v2/broken/blobs/uploads/`, { method: 'POST' });
      const body = await res.text();
      expect(res.status).toBe(500);
      expect(JSON.parse(body)).toEqual({ errors: [{ code: 'UNKNOWN', message: 'unknown error' }] });
      expect(body).not.toContain(root);
      expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      // The operator still learns what failed, and where.
      expect(logged.map((e) => e.message).join('\n')).toContain(path.join(root, 'repositories', 'broken', '_uploads'));
    } finally {
      await registry.close();
    }
  });

  it('malformed JSON to the registry and to the debug server: JSON errors without a stack', async () => {
    const receiver = await new TestReceiver().start();
    const logged: string[] = [];
    const registry = await startRegistry(
      parseRegistryConfig({
        version: '0.1',
        http: { addr: '127.0.0.1:0', debug: { addr: '127.0.0.1:0' } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'json') } },
        notifications: { endpoints: [{ name: 'hook', url: receiver.url }] },
      }),
      { logger: new Logger(DEFAULT_LOG_CONFIG, (line) => logged.push(line)) },
    );
    try {
      const manifest = await fetch(`${registry.url}/v2/a/manifests/v1`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: '{"schemaVersion": 2,',
      });
      const manifestBody = await manifest.text();
      expect(manifest.status).toBe(400);
      expect(JSON.parse(manifestBody).errors[0].code).toBe('MANIFEST_INVALID');

      const replay = await fetch(`${registry.debugUrl}/debug/notifications/deadletters/replay?endpoint=hook`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"ids": [',
      });
      const replayBody = await replay.text();
      expect(replay.status).toBe(400);
      expect(replay.headers.get('content-type')).toMatch(/^application\/json/);
      expect(() => JSON.parse(replayBody)).not.toThrow();
      for (const body of [manifestBody, replayBody]) {
        expect(body).not.toMatch(/\bat \S+ \(|node_modules|<pre>/);
        expect(body).not.toContain(path.join(__dirname, '..', '..'));
      }
    } finally {
      await registry.close();
      await receiver.stop();
    }
  });
});

/** A request whose body the test sends piece by piece; `response` settles with the status (or the error that ended it). */
function slowRequest(url: string, method: string, headers: Record<string, string> = {}) {
  const req = http.request(url, { method, agent: false, headers: { 'Content-Type': BLOB, ...headers } });
  const response = new Promise<{ status?: number; headers?: http.IncomingHttpHeaders; body?: string; error?: Error }>((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', (error) => resolve({ status: res.statusCode, error }));
    });
    req.on('error', (error) => resolve({ error }));
  });
  return { req, response };
}

/** Writes `count` pieces of `piece` one every `everyMs`, then ends the body. */
async function drip(req: http.ClientRequest, piece: Buffer, count: number, everyMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (req.destroyed) return;
    req.write(piece);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  req.end();
}

const quiet = () => new Logger(DEFAULT_LOG_CONFIG, () => undefined);

describe('item 13: password guessing', () => {
  let htpasswd: string;
  // Cost 10, as operators choose with `htpasswd -B -C 10`: tens of milliseconds per comparison.
  beforeAll(() => {
    htpasswd = path.join(dir, 'htpasswd');
    writeFileSync(
      htpasswd,
      Buffer.concat([execFileSync('/usr/bin/htpasswd', ['-nbBC', '10', 'alice', 'right']), execFileSync('/usr/bin/htpasswd', ['-nbBC', '10', 'bob', 'other'])]),
    );
  });
  const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  it('while 8 clients send wrong passwords, a logged-in user is served long before they are done', async () => {
    const pool = new BcryptPool();
    const registry = await serve({ root: path.join(dir, 'flood'), auth: { realm: 'test', path: htpasswd, pool, maxFailures: 1_000_000 } });
    try {
      // The user's client has logged in before, as docker does before a push.
      expect((await fetch(`${registry.url}/v2/`, { headers: basic('alice', 'right') })).status).toBe(200);
      const perClient = 5;
      let wrongAnswered = 0;
      const attacker = async (n: number) => {
        for (let i = 0; i < perClient; i++) {
          const res = await fetch(`${registry.url}/v2/`, { headers: basic('bob', `guess-${n}-${i}`) });
          expect(res.status).toBe(401);
          wrongAnswered++;
        }
      };
      const attack = Promise.all(Array.from({ length: 8 }, (_, n) => attacker(n)));
      // The flood is under way once its first guess has been answered.
      await waitFor(() => wrongAnswered >= 1);
      let wrongWhenServed = -1;
      const user = (async () => {
        for (let i = 0; i < 20; i++) expect((await fetch(`${registry.url}/v2/`, { headers: basic('alice', 'right') })).status).toBe(200);
        wrongWhenServed = wrongAnswered;
      })();
      await Promise.all([attack, user]);
      // The user's 20 requests were served while most of the 40 wrong guesses were still waiting for bcrypt
      // (on the event loop, each of them waited for a round of the attackers' comparisons).
      expect(wrongWhenServed).toBeLessThan((8 * perClient) / 2);
    } finally {
      await registry.close();
      await pool.close();
    }
  });

  it('an unknown user is answered as a wrong password is: after one bcrypt comparison, with the same answer', async () => {
    const pool = new BcryptPool({ size: 1 });
    const registry = await serve({ root: path.join(dir, 'enumerate'), auth: { realm: 'test', path: htpasswd, pool } });
    try {
      const attempt = async (user: string, password: string) => {
        const before = pool.comparisons;
        const res = await fetch(`${registry.url}/v2/`, { headers: basic(user, password) });
        return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text(), comparisons: pool.comparisons - before };
      };
      const wrong = await attempt('alice', 'wrong');
      const unknown = await attempt('mallory', 'wrong');
      expect(wrong.status).toBe(401);
      expect(unknown).toEqual(wrong);
      expect(unknown.comparisons).toBe(1);
    } finally {
      await registry.close();
      await pool.close();
    }
  });

  it('a client with too many failed logins gets 429 with Retry-After, whatever it sends; other clients do not', async () => {
    const registry = await serve({ root: path.join(dir, 'limit'), auth: { realm: 'test', path: htpasswd, maxFailures: 3, failureWindowMs: 60_000 } });
    try {
      for (const user of ['alice', 'mallory', 'alice']) expect((await fetch(`${registry.url}/v2/`, { headers: basic(user, 'nope') })).status).toBe(401);
      const refused = await fetch(`${registry.url}/v2/`, { headers: basic('alice', 'right') });
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('TOOMANYREQUESTS');
      // Without credentials it is still told how to log in.
      expect((await fetch(`${registry.url}/v2/`)).status).toBe(401);
      // Another address (127.0.0.2 is this host too) is not held back.
      const other = await new Promise<number | undefined>((resolve, reject) => {
        http
          .get(`${registry.url}/v2/`, { localAddress: '127.0.0.2', headers: basic('alice', 'right'), agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode);
          })
          .on('error', reject);
      });
      expect(other).toBe(200);
    } finally {
      await registry.close();
    }
  });
});

describe('item 14: slow, concurrent and oversized bodies', () => {
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  beforeAll(async () => {
    registry = await startRegistry(
      parseRegistryConfig({ version: '0.1', http: { addr: '127.0.0.1:0' }, storage: { filesystem: { rootdirectory: path.join(dir, 'bodies') } } }),
      // Short limits, so that the test sees both: 300ms for a request to arrive, 1s of silence in an upload.
      { logger: quiet(), requestTimeoutMs: 300, uploadIdleTimeoutMs: 1000 },
    );
  });
  afterAll(() => registry.close());

  const session = async (name: string) => {
    const res = await fetch(`${registry.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(202);
    return `${registry.url}${res.headers.get('location')}`;
  };

  it('an upload that keeps sending outlives the request timeout many times over', async () => {
    const url = await session('slow/steady');
    const upload = slowRequest(url, 'PATCH');
    // 30 pieces 100ms apart: 3s, ten times the request timeout, never a second of silence.
    await drip(upload.req, Buffer.alloc(100, 's'), 30, 100);
    const res = await upload.response;
    expect([res.status, res.headers?.range]).toEqual([202, '0-2999']);
  });

  it('any other request still has to arrive within the request timeout', async () => {
    const put = slowRequest(`${registry.url}/v2/slow/manifest/manifests/v1`, 'PUT', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
    void drip(put.req, Buffer.from(' '), 30, 100);
    expect((await put.response).status).toBe(408);
  });

  it('an upload that goes silent is cut', async () => {
    const url = await session('slow/idle');
    const upload = slowRequest(url, 'PATCH');
    upload.req.write(Buffer.alloc(100, 'i'));
    // Nothing more is sent; the registry must not wait for ever (jest's limit is 30 times the idle timeout).
    const res = await upload.response;
    expect(res.status === 408 || res.error !== undefined).toBe(true);
    upload.req.destroy();
  });

  it('a second PATCH to a session while one is sending is refused with 416 and the Range so far; bytes never interleave', async () => {
    const url = await session('slow/concurrent');
    const first = slowRequest(url, 'PATCH');
    first.req.write(Buffer.alloc(100, 'a'));
    // Once the session holds the first bytes, the first PATCH is under way.
    await waitFor(async () => (await fetch(url)).headers.get('range') === '0-99');
    const second = await fetch(url, { method: 'PATCH', headers: { 'Content-Type': BLOB }, body: Buffer.alloc(100, 'b') });
    expect(second.status).toBe(416);
    expect(second.headers.get('range')).toMatch(/^0-\d+$/);
    expect(((await second.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('BLOB_UPLOAD_INVALID');
    await drip(first.req, Buffer.alloc(100, 'a'), 4, 20);
    const res = await first.response;
    expect([res.status, res.headers?.range]).toEqual([202, '0-499']);
    // Only the first request's bytes are in the session: completing with their digest succeeds.
    const blob = content(BLOB, Buffer.alloc(500, 'a'));
    expect((await fetch(`${url}?digest=${blob.digest}`, { method: 'PUT' })).status).toBe(201);
  });

  (existsSync(SKOPEO) ? it : it.skip)('skopeo pushes a layer over a slow link that takes many request timeouts', async () => {
    // A link of about 800 KB/s from skopeo to the registry: 8 KiB every 10ms.
    const link = net.createServer((client) => {
      const upstream = net.connect(Number(new URL(registry.url).port), '127.0.0.1');
      const pace = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          let at = 0;
          const step = () => {
            if (at >= chunk.length) return done();
            this.push(chunk.subarray(at, (at += 8 * 1024)));
            setTimeout(step, 10);
          };
          step();
        },
      });
      client.pipe(pace).pipe(upstream).pipe(client);
      const end = () => [client, upstream].forEach((s) => s.destroy());
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => link.listen(0, '127.0.0.1', resolve));
    try {
      const layout = mkdtempSync(path.join(dir, 'layout-'));
      // About 1.2 MB of gzip'd layer (random text does not compress much): over a second on the link, 300ms allowed.
      const image = tinyImage({ layers: [{ 'noise.txt': randomBytes(1024 * 1024).toString('base64') }] });
      expect(image.layers[0].size).toBeGreaterThan(1_000_000);
      await writeOciLayout(layout, [{ tag: 'v1', image }]);
      const host = `127.0.0.1:${(link.address() as net.AddressInfo).port}`;
      await promisify(execFile)(SKOPEO, ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${host}/slow/skopeo:v1`], {
        env: { ...process.env, HOME: layout },
      });
      const res = await fetch(`${registry.url}/v2/slow/skopeo/blobs/${image.layers[0].digest}`, { method: 'HEAD' });
      expect([res.status, res.headers.get('content-length')]).toEqual([200, String(image.layers[0].size)]);
    } finally {
      await new Promise((resolve) => link.close(resolve));
    }
  }, 60_000);

  it('abandoned upload sessions are purged; one a request is sending to is left alone', async () => {
    const purging = await startRegistry(
      parseRegistryConfig({
        version: '0.1',
        http: { addr: '127.0.0.1:0' },
        storage: {
          filesystem: { rootdirectory: path.join(dir, 'purge') },
          maintenance: { uploadpurging: { enabled: true, age: '1s', interval: '200ms', dryrun: false } },
        },
      }),
      { logger: quiet() },
    );
    try {
      const start = async (name: string) => `${purging.url}${(await fetch(`${purging.url}/v2/${name}/blobs/uploads/`, { method: 'POST' })).headers.get('location')}`;
      const abandoned = await start('purge/abandoned');
      const busy = await start('purge/busy');
      const upload = slowRequest(busy, 'PATCH');
      // 3s of sending: over the age for most of it, with a purge every 200ms.
      const sending = drip(upload.req, Buffer.alloc(100, 'p'), 30, 100);
      await waitFor(async () => (await fetch(abandoned)).status === 404);
      await sending;
      const res = await upload.response;
      expect([res.status, res.headers?.range]).toEqual([202, '0-2999']);
      // Once its request is done, the old session goes too.
      await waitFor(async () => (await fetch(busy)).status === 404);
    } finally {
      await purging.close();
    }
  });

  it('a manifest PUT declaring more than the limit is refused before its body is read', async () => {
    const put = slowRequest(`${registry.url}/v2/big/manifest/manifests/v1`, 'PUT', {
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      'Content-Length': String(5 * 1024 * 1024),
    });
    // 64 KiB of 5 MiB sent, then nothing: the answer has to come without the rest.
    put.req.write(Buffer.alloc(64 * 1024, ' '));
    const res = await put.response;
    expect(res.status).toBe(413);
    expect(res.headers?.connection).toBe('close');
    expect(JSON.parse(res.body!).errors[0].code).toBe('MANIFEST_INVALID');
    put.req.destroy();
  });
});

describe('item 15: SIGTERM behind slow clients', () => {
  it('closes every connection after http.draintimeout, delivers what was queued, and exits', async () => {
    const certs = makeCertificates(mkdtempSync(path.join(dir, 'certs-')));
    const receiver = await new TestReceiver().start();
    // A path of this test's own: jest runs suites side by side, and a registry of another
    // suite still delivering to a port it had may find this receiver on it.
    const hook = `/item15-${randomBytes(8).toString('hex')}`;
    const ours = (req: { url: string }) => req.url === hook;
    // Down for now: the event of the push below waits in the queue until shutdown has begun.
    receiver.respond = (req) => (ours(req) ? 503 : 404);
    const file = path.join(dir, 'shutdown.yml');
    writeFileSync(
      file,
      stringify({
        version: '0.1',
        http: { addr: '127.0.0.1:0', draintimeout: '1s', tls: { certificate: certs.cert, key: certs.key } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'shutdown') } },
        notifications: {
          queue: { type: 'sqlite', path: path.join(dir, 'shutdown.db'), draintimeout: '2s', spooldir: path.join(dir, 'shutdown-spool') },
          endpoints: [{ name: 'hook', url: `${receiver.url.slice(0, -1)}${hook}`, backoff: '10ms', threshold: 1000 }],
        },
      }),
    );
    const child = spawnTs('demo-registry/main.ts', ['--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr!.on('data', (c: Buffer) => {
          stderr += c.toString();
          const m = stderr.match(/listening on (https:\/\/\S+?)(,|\s)/);
          if (m) resolve(m[1]);
        });
        void exited.then(() => reject(new Error(`exited before listening: ${stderr}`)));
      });
      const ca = readFileSync(certs.caCert);
      const blob = content(BLOB, Buffer.from('pushed before SIGTERM'));
      const pushed = await new Promise<number | undefined>((resolve, reject) => {
        const req = https.request(`${url}/v2/shutdown/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', ca, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', reject);
        req.end(blob.bytes);
      });
      expect(pushed).toBe(201);
      await receiver.until((r) => r.requests.some(ours));

      // Two slow clients: an upload that sends a little and then waits, and a TCP connection that never starts its TLS handshake.
      const { port } = new URL(url);
      const upload = https.request(`${url}/v2/shutdown/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', ca, agent: false });
      const uploadClosed = new Promise<void>((resolve) => upload.on('error', () => resolve()).on('response', () => resolve()));
      upload.write('a little');
      const silent = net.connect(Number(port), '127.0.0.1');
      const silentClosed = new Promise<void>((resolve) => silent.on('close', () => resolve()).on('error', () => undefined));
      await new Promise<void>((resolve) => silent.once('connect', () => resolve()));

      const signalled = Date.now();
      child.kill('SIGTERM');
      receiver.respond = (req) => (ours(req) ? 200 : 404);
      await Promise.all([uploadClosed, silentClosed]);
      expect(await exited).toBe(0);
      // http.draintimeout (1s) + the queue's draintimeout (2s), with room to spare; it used to wait for the clients.
      expect(Date.now() - signalled).toBeLessThan(1_000 + 2_000 + 10_000);
      expect(receiver.events.map((e) => [e.action, e.target.digest])).toEqual([['push', blob.digest]]);
    } finally {
      child.kill('SIGKILL');
      await receiver.stop();
    }
  }, 60_000);
});
