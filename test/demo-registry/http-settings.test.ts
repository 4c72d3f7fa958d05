// The `http:`, `log:`, `catalog:` and `storage.maintenance.readonly` settings, through
// startRegistry as main.ts runs them.
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRegistryConfig } from '../../demo-registry/config';
import { Logger } from '../../demo-registry/log';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { TestReceiver } from '../helpers/http-receiver';
import { content } from '../helpers/oci';
import { waitFor } from '../helpers/wait';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-http-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const running: RunningRegistry[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** Starts a registry on 127.0.0.1:0 with `extra` merged into a minimal config; its log lines are collected. */
async function start(extra: Record<string, unknown> = {}, root = path.join(dir, `root-${running.length}-${Date.now()}`)) {
  const { http: httpExtra, storage: storageExtra, ...rest } = extra as { http?: object; storage?: object };
  const config = parseRegistryConfig({
    version: '0.1',
    http: { addr: '127.0.0.1:0', ...httpExtra },
    storage: { filesystem: { rootdirectory: root }, delete: { enabled: true }, ...storageExtra },
    ...rest,
  });
  const lines: string[] = [];
  const registry = await startRegistry(config, { logger: new Logger(config.log, (l) => lines.push(l)) });
  running.push(registry);
  return { registry, lines, root };
}

const blob = (text: string) => content('application/octet-stream', Buffer.from(text));

async function pushBlob(url: string, name: string, text: string): Promise<Response> {
  const b = blob(text);
  return fetch(`${url}/v2/${name}/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes });
}

describe('http.prefix', () => {
  it('serves the API under the prefix, and Location and Link headers keep it', async () => {
    const { registry } = await start({ http: { prefix: '/my/registry/' }, catalog: { maxentries: 1 } });
    expect(registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/my\/registry$/);
    const origin = new URL(registry.url).origin;
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    expect((await fetch(`${origin}/v2/`)).status).toBe(404);

    const b = blob('under a prefix');
    const started = await fetch(`${registry.url}/v2/a/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = started.headers.get('location')!;
    expect(location).toMatch(/^\/my\/registry\/v2\/a\/blobs\/uploads\/[0-9a-f-]{36}$/);
    const done = await fetch(`${origin}${location}?digest=${b.digest}`, { method: 'PUT', body: b.bytes });
    expect(done.status).toBe(201);
    expect(done.headers.get('location')).toBe(`/my/registry/v2/a/blobs/${b.digest}`);
    expect((await pushBlob(registry.url, 'b', 'second')).status).toBe(201);
    const catalog = await fetch(`${registry.url}/v2/_catalog`);
    expect(catalog.headers.get('link')).toBe('</my/registry/v2/_catalog?last=a&n=1>; rel="next"');
  });
});

describe('http.relativeurls', () => {
  it('sends events whose URLs are paths, without scheme and host, even with http.host (as Distribution)', async () => {
    const receiver = await new TestReceiver().start();
    try {
      const { registry } = await start({ http: { relativeurls: true, host: 'https://registry.example.com' }, notifications: { endpoints: [{ name: 'r', url: receiver.url, backoff: '10ms' }] } });
      const b = blob('relative');
      expect((await pushBlob(registry.url, 'rel/app', 'relative')).status).toBe(201);
      await receiver.until((r) => r.events.length === 1);
      expect(receiver.events[0].target.url).toBe(`/v2/rel/app/blobs/${b.digest}`);
    } finally {
      await receiver.stop();
    }
  });

  it('sends absolute URLs by default', async () => {
    const receiver = await new TestReceiver().start();
    try {
      const { registry } = await start({ notifications: { endpoints: [{ name: 'r', url: receiver.url, backoff: '10ms' }] } });
      expect((await pushBlob(registry.url, 'abs', 'absolute')).status).toBe(201);
      await receiver.until((r) => r.events.length === 1);
      expect(receiver.events[0].target.url).toBe(`${registry.url}/v2/abs/blobs/${blob('absolute').digest}`);
    } finally {
      await receiver.stop();
    }
  });
});

describe('http.headers and the log', () => {
  it('puts http.headers on every response and writes an access line per response in the configured format', async () => {
    const { registry, lines } = await start({
      http: { headers: { 'X-Content-Type-Options': ['nosniff'] } },
      log: { formatter: 'json', fields: { service: 'registry' } },
    });
    for (const url of [`${registry.url}/v2/`, `${registry.url}/v2/x/blobs/sha256:${'0'.repeat(64)}`, `${registry.url}/elsewhere`]) {
      expect((await fetch(url)).headers.get('x-content-type-options')).toBe('nosniff');
    }
    const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => String(e.msg).startsWith('response completed'));
    expect(access.map((e) => [e['http.request.method'], e['http.request.uri'], e['http.response.status'], e.level, e.service])).toEqual([
      ['GET', '/v2/', 200, 'info', 'registry'],
      ['GET', `/v2/x/blobs/sha256:${'0'.repeat(64)}`, 404, 'error', 'registry'],
      ['GET', '/elsewhere', 404, 'error', 'registry'],
    ]);
    expect(access.every((e) => /^\d+(\.\d+)?(ns|µs|ms|s)$/.test(String(e['http.response.duration'])))).toBe(true);
  });

  it('writes no access lines with log.accesslog.disabled, and nothing below log.level', async () => {
    const quiet = await start({ log: { accesslog: { disabled: true } } });
    await fetch(`${quiet.registry.url}/v2/`);
    expect(quiet.lines.filter((l) => l.includes('response completed'))).toEqual([]);

    const errorsOnly = await start({ log: { level: 'error' } });
    await fetch(`${errorsOnly.registry.url}/v2/`);
    await fetch(`${errorsOnly.registry.url}/v2/x/manifests/latest`);
    expect(errorsOnly.lines).toHaveLength(1);
    expect(errorsOnly.lines[0]).toMatch(/^time="[^"]+" level=error msg="response completed with error" .*http\.request\.uri=\/v2\/x\/manifests\/latest .*http\.response\.status=404/);
  });

  it("without a log: section, writes the demo's short lines and no access lines", async () => {
    const { registry, lines } = await start();
    await fetch(`${registry.url}/v2/`);
    expect(lines.every((l) => l.startsWith('demo-registry: '))).toBe(true);
    expect(lines.filter((l) => l.includes('response completed'))).toEqual([]);
  });
});

describe('catalog.maxentries', () => {
  it('returns at most maxentries repositories per page, and refuses a larger n as Distribution does', async () => {
    const { registry } = await start({ catalog: { maxentries: 2 } });
    for (const name of ['a', 'b', 'c']) expect((await pushBlob(registry.url, name, name)).status).toBe(201);
    const first = await fetch(`${registry.url}/v2/_catalog`);
    expect(await first.json()).toEqual({ repositories: ['a', 'b'] });
    expect(first.headers.get('link')).toBe('</v2/_catalog?last=b&n=2>; rel="next"');
    expect(await (await fetch(`${registry.url}/v2/_catalog?last=b&n=2`)).json()).toEqual({ repositories: ['c'] });
    const tooMany = await fetch(`${registry.url}/v2/_catalog?n=3`);
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { errors: Array<{ code: string; detail: unknown }> }).errors[0]).toMatchObject({ code: 'PAGINATION_NUMBER_INVALID', detail: { n: 3 } });
  });
});

describe('storage.maintenance.readonly', () => {
  it('answers pushes and deletes 405 with Allow: GET, HEAD (as docker-registry 2.8.2), serves reads, sends no event', async () => {
    const root = path.join(dir, 'readonly');
    const writable = await start({}, root);
    expect((await pushBlob(writable.registry.url, 'ro', 'kept')).status).toBe(201);
    await writable.registry.close();

    const receiver = await new TestReceiver().start();
    try {
      const { registry } = await start(
        { storage: { maintenance: { readonly: { enabled: true } } }, notifications: { endpoints: [{ name: 'r', url: receiver.url, backoff: '10ms' }] } },
        root,
      );
      const b = blob('kept');
      const attempts = [
        fetch(`${registry.url}/v2/ro/blobs/uploads/`, { method: 'POST' }),
        fetch(`${registry.url}/v2/ro/blobs/uploads/?digest=${blob('new').digest}`, { method: 'POST', body: 'new' }),
        fetch(`${registry.url}/v2/ro/manifests/v1`, { method: 'PUT', body: '{}', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } }),
        fetch(`${registry.url}/v2/ro/blobs/${b.digest}`, { method: 'DELETE' }),
        fetch(`${registry.url}/v2/ro/manifests/${b.digest}`, { method: 'DELETE' }),
      ];
      for (const res of await Promise.all(attempts)) {
        expect([res.status, res.headers.get('allow'), await res.text()]).toEqual([405, 'GET, HEAD', 'Method not allowed\n']);
      }
      const read = await fetch(`${registry.url}/v2/ro/blobs/${b.digest}`);
      expect(read.status).toBe(200);
      expect(await read.text()).toBe('kept');
      expect((await fetch(`${registry.url}/v2/_catalog`)).status).toBe(200);
      await receiver.until((r) => r.events.length === 1);
      expect(receiver.events.map((e) => `${e.action} ${e.request.method}`)).toEqual(['pull GET']);
    } finally {
      await receiver.stop();
    }
  });
});

describe('http.draintimeout', () => {
  /** Starts a chunked PATCH of an upload session and leaves it open; resolves with the request and its outcome. */
  async function openUpload(url: string) {
    const session = await fetch(`${url}/v2/drain/blobs/uploads/`, { method: 'POST' });
    const location = session.headers.get('location')!;
    const req = http.request(`${new URL(url).origin}${location}`, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } });
    const outcome = new Promise<number | string>((resolve) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
    });
    req.write('first part;');
    await new Promise((r) => setTimeout(r, 100)); // the request reaches the registry
    return { req, outcome };
  }

  it('lets a request in progress finish within the drain timeout', async () => {
    const { registry } = await start({ http: { draintimeout: '2s' } });
    const { req, outcome } = await openUpload(registry.url);
    const t0 = Date.now();
    const closed = registry.close();
    await new Promise((r) => setTimeout(r, 200));
    req.end('last part');
    expect(await outcome).toBe(202);
    await closed;
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('closes what is still open when the drain timeout ends', async () => {
    const { registry } = await start({ http: { draintimeout: '1s' } });
    const { outcome } = await openUpload(registry.url);
    const t0 = Date.now();
    await registry.close();
    const took = Date.now() - t0;
    expect(await outcome).toBe('ECONNRESET');
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(5000);
  });

  it("without one, closes connections at once, as Distribution's default", async () => {
    const { registry } = await start();
    const { outcome } = await openUpload(registry.url);
    const t0 = Date.now();
    await registry.close();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await outcome).toBe('ECONNRESET');
  });
});

describe('http.net: unix', () => {
  it('listens on a Unix socket', async () => {
    const socketPath = path.join(dir, 'registry.sock');
    const { registry } = await start({ http: { net: 'unix', addr: socketPath } });
    expect(registry.url).toBe(`unix:${socketPath}`);
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ socketPath, path: '/v2/' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    expect(status).toBe(200);
  });
});

describe('storage.inmemory', () => {
  it('keeps content in a temporary directory for the life of the registry', async () => {
    const config = parseRegistryConfig({ version: '0.1', http: { addr: '127.0.0.1:0' }, storage: { inmemory: null } });
    const registry = await startRegistry(config, { logger: new Logger(config.log, () => undefined) });
    const root = registry.storage.root;
    try {
      expect((await pushBlob(registry.url, 'mem', 'in memory')).status).toBe(201);
      expect(await (await fetch(`${registry.url}/v2/mem/blobs/${blob('in memory').digest}`)).text()).toBe('in memory');
    } finally {
      await registry.close();
    }
    expect(existsSync(root)).toBe(false);
  });
});

describe('http.debug.prometheus', () => {
  it('serves the metrics at its path when enabled', async () => {
    const { registry } = await start({ http: { debug: { addr: '127.0.0.1:0', prometheus: { enabled: true, path: '/prom' } } } });
    const res = await fetch(`${registry.debugUrl}/prom`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('registry_notifications_');
    expect((await fetch(`${registry.debugUrl}/metrics`)).status).toBe(200);
  });
});

describe('http.debug.auth', () => {
  it('puts the console, stats, metrics and health of the debug address behind a token', async () => {
    const { registry } = await start({
      http: { debug: { addr: '127.0.0.1:0', prometheus: { enabled: true, path: '/prom' }, auth: { token: 's3cret' } } },
      health: { storagedriver: { enabled: true, interval: '1s', threshold: 3 } },
    });
    for (const route of ['/debug/vars', '/metrics', '/prom', '/debug/health', '/debug/notifications', '/debug/notifications/api/endpoints']) {
      const open = await fetch(`${registry.debugUrl}${route}`);
      expect([route, open.status]).toEqual([route, 401]);
      expect(open.headers.get('www-authenticate')).toMatch(/^Basic /);
      const authed = await fetch(`${registry.debugUrl}${route}`, { headers: { authorization: 'Bearer s3cret' } });
      expect([route, authed.status]).toEqual([route, 200]);
    }
  });

  it('refuses an auth section with neither or both kinds of credentials, naming it', () => {
    const parse = (auth: unknown) => () => parseRegistryConfig({ version: '0.1', http: { addr: '127.0.0.1:0', debug: { addr: '127.0.0.1:0', auth } }, storage: { inmemory: null } });
    expect(parse({})).toThrow(/http\.debug\.auth: give exactly one of token/);
    expect(parse({ token: 'a', htpasswd: { path: '/x' } })).toThrow(/http\.debug\.auth: give exactly one of token/);
    expect(parse({ tokn: 'a' })).toThrow(/http\.debug\.auth\.tokn: unknown field/);
  });
});

describe('health', () => {
  it('answers 503 UNAVAILABLE while a check fails, and lists it at /debug/health', async () => {
    const maintenance = path.join(dir, 'maintenance-on');
    const { registry } = await start({
      http: { debug: { addr: '127.0.0.1:0' } },
      health: { storagedriver: { enabled: true, interval: '50ms', threshold: 3 }, file: [{ file: maintenance, interval: '50ms' }] },
    });
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
    writeFileSync(maintenance, '');
    await waitFor(async () => (await fetch(`${registry.url}/v2/`)).status === 503);
    const res = await fetch(`${registry.url}/v2/_catalog`);
    expect(await res.json()).toEqual({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable', detail: 'health check failed: please see /debug/health' }] });
    const status = await fetch(`${registry.debugUrl}/debug/health`);
    expect(status.status).toBe(503);
    expect(await status.json()).toEqual({ [maintenance]: 'file exists' });
    rmSync(maintenance);
    await waitFor(async () => (await fetch(`${registry.url}/v2/`)).status === 200);
    expect(await (await fetch(`${registry.debugUrl}/debug/health`)).json()).toEqual({});
  });
});
