// No event lost across crashes, restarts, outages and replicas: real processes, a real
// client (skopeo), a real SQLite file and a real Redis.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Endpoint } from '../../lib/deliver/endpoint';
import { RedisStore } from '../../lib/stores/redis-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import type { QueueStore } from '../../lib/stores/queue-store';
import { pushImageOverHttp, tinyImage, writeOciLayout } from '../../demo-registry/sample-image';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { freePort, RegistryProcess } from '../helpers/registry-process';

const run = promisify(execFile);
const SKOPEO = '/usr/bin/skopeo';

function registryConfig(dir: string, endpointPort: number, queue: object, extra: object = {}) {
  return {
    version: 0.1,
    http: { addr: '127.0.0.1:0' },
    storage: { filesystem: { rootdirectory: path.join(dir, 'registry') }, delete: { enabled: true } },
    notifications: {
      queue,
      endpoints: [{ name: 'hook', url: `http://127.0.0.1:${endpointPort}/`, threshold: 1, backoff: '50ms', timeout: '1s', ...extra }],
    },
  };
}

describe('durable delivery', () => {
  let dir: string;
  const running: RegistryProcess[] = [];
  const receivers: TestReceiver[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'durable-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (config: object, name?: string) => {
    const p = await RegistryProcess.start(dir, config, name);
    running.push(p);
    return p;
  };
  const receiver = async (port?: number) => {
    const r = await new TestReceiver().start(port);
    receivers.push(r);
    return r;
  };

  (existsSync(SKOPEO) ? it : it.skip)('delivers every event of a skopeo push, each once, after the registry is SIGKILLed with the endpoint down', async () => {
    const port = await freePort(); // nothing listens here until the restart
    const config = registryConfig(dir, port, { type: 'sqlite', path: path.join(dir, 'notifications.db') });
    const first = await start(config);
    const layout = path.join(dir, 'image');
    await writeOciLayout(layout, [{ tag: 'v1', image: tinyImage() }]);
    await run(SKOPEO, ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${new URL(first.url).host}/demo/app:v1`]);
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');

    const hook = await receiver(port);
    const second = await start(config);
    await hook.until((r) => r.events.length >= 3);
    await new Promise((r) => setTimeout(r, 300)); // anything sent twice would arrive by now
    expect(await second.stop('SIGTERM')).toBe(0);
    expect(hook.events.map((e) => `${e.action} ${e.target.mediaType}${e.target.tag ? ' ' + e.target.tag : ''}`)).toEqual([
      'push application/octet-stream',
      'push application/octet-stream',
      'push application/vnd.oci.image.manifest.v1+json v1',
    ]);
    expect(new Set(hook.events.map((e) => e.id)).size).toBe(3);
    expect(hook.events.every((e) => e.request.useragent.startsWith('skopeo/'))).toBe(true);
  }, 120_000);

  it('on SIGTERM stops taking events, delivers for the drain timeout, and leaves the rest for the next start', async () => {
    const port = await freePort();
    const config = registryConfig(dir, port, { type: 'sqlite', path: path.join(dir, 'n.db'), draintimeout: '200ms' });
    const first = await start(config);
    const head = () => fetch(`${first.url}/v2/`).then((r) => r.status);
    expect(await head()).toBe(200);
    // Pull events need an image: push one through the API by hand (blob, config, manifest).
    const { digest } = await pushImageOverHttp(first.url, 'demo/app', 'v1');
    for (let i = 0; i < 5; i++) expect((await fetch(`${first.url}/v2/demo/app/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
    expect(await first.stop('SIGTERM')).toBe(0); // within the drain timeout, with the endpoint down

    const hook = await receiver(port);
    const second = await start(config);
    await hook.until((r) => r.events.length >= 8);
    await second.stop('SIGTERM');
    expect(hook.events.filter((e) => e.action === 'pull' && e.request.method === 'HEAD')).toHaveLength(5);
    expect(hook.events.filter((e) => e.action === 'push').map((e) => e.target.digest)).toContain(digest);
    expect(new Set(hook.events.map((e) => e.id)).size).toBe(hook.events.length);
  }, 120_000);

  it('fails at start-up naming the file when the SQLite queue is corrupt', async () => {
    const db = path.join(dir, 'n.db');
    require('node:fs').writeFileSync(db, 'not a database '.repeat(500));
    await expect(start(registryConfig(dir, 9, { type: 'sqlite', path: db }))).rejects.toThrow(new RegExp(`sqlite store at ${db}: file is not a database`));
  });

  it('fails at start-up naming the address when Redis is unreachable', async () => {
    const port = await freePort();
    await expect(start(registryConfig(dir, 9, { type: 'redis', url: `redis://127.0.0.1:${port}` }))).rejects.toThrow(
      new RegExp(`redis store at redis://127.0.0.1:${port}: .*ECONNREFUSED`),
    );
  });

  describe.each<[string, () => Promise<{ store: QueueStore; cleanup: () => Promise<void> }>]>([
    ['sqlite', async () => ({ store: new SqliteStore({ path: path.join(dir, 'outage.db'), queue: 'hook' }), cleanup: async () => undefined })],
    [
      'redis',
      async () => {
        const prefix = uniquePrefix('outage');
        return { store: await RedisStore.connect({ url: REDIS_URL, prefix, queue: 'hook', consumer: 'one' }), cleanup: () => deletePrefix(prefix) };
      },
    ],
  ])('through an outage (%s store)', (kind, make) => {
    const body = () => {
      it('delivers everything, in order, once the endpoint answers 200 again', async () => {
        const { store, cleanup } = await make();
        const hook = await receiver();
        let failing = true;
        hook.respond = () => (failing ? 500 : 200);
        const endpoint = new Endpoint({ name: 'hook', url: hook.url, threshold: 3, backoffMs: 5, maxBackoffMs: 40 }, { store });
        const events = makeEvents(200);
        for (const e of events) await endpoint.write([e]);
        await hook.until((r) => r.requests.length >= 10);
        failing = false;
        await hook.until((r) => r.events.length === 200);
        await endpoint.close();
        await cleanup();
        expect(hook.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
        expect(endpoint.stats.snapshot()).toMatchObject({ Successes: 200, Pending: 0 });
        expect(endpoint.stats.snapshot().Failures).toBeGreaterThanOrEqual(10);
      });
    };
    if (kind === 'redis') describeWithRedis('with Redis', body);
    else body();
  });

  describeWithRedis('two replicas on one Redis', () => {
    const prefix = uniquePrefix('replicas');
    afterAll(() => deletePrefix(prefix));

    it('delivers every event once while both live, and the survivor delivers what a killed replica held', async () => {
      const port = await freePort();
      const hook = await receiver(port);
      // A slow endpoint, so that deliveries are under way when a replica dies.
      hook.respond = () => {
        const start = Date.now();
        while (Date.now() - start < 5); // hold the answer ~5ms
        return 200;
      };
      const queue = { type: 'redis', url: REDIS_URL, prefix, claimidle: '2s' };
      const storage = { filesystem: { rootdirectory: path.join(dir, 'registry') }, delete: { enabled: true } };
      // Every command on this test's keys, to tell what became of an event that went missing.
      const monitorClient = new Redis(REDIS_URL);
      const monitor = await monitorClient.monitor(); // a connection of its own
      const commands: string[] = [];
      monitor.on('monitor', (time: string, args: string[], source: string) => {
        if (args.some((x) => String(x).startsWith(prefix))) commands.push(`${time} ${source} ${args.join(' ')}`);
      });
      // Whether a missing event never reached Redis, or reached it and was lost after.
      const missing = () => {
        const got = new Set(hook.events.map((e) => e.id));
        const added = commands.filter((c) => / xadd /i.test(c)).map((c) => String(JSON.parse(c.slice(c.indexOf('{'))).id));
        return `${added.length} XADDs seen; added and not received: ${JSON.stringify(added.filter((id) => !got.has(id)))}`;
      };
      try {
        const a = await start({ ...registryConfig(dir, port, queue), storage }, 'a.yml');
        const b = await start({ ...registryConfig(dir, port, queue), storage }, 'b.yml');
        await pushImageOverHttp(a.url, 'demo/app', 'v1'); // 3 events, through replica a
        const pulls = async (url: string, n: number) => {
          for (let i = 0; i < n; i++) expect((await fetch(`${url}/v2/demo/app/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
        };
        const bySource = () => {
          const counts: Record<string, number> = {};
          for (const e of hook.events) {
            const k = `${(e.source.instanceID ?? '').slice(0, 8)} ${e.request.method}`;
            counts[k] = (counts[k] ?? 0) + 1;
          }
          return counts;
        };
        // On a failure, say which step and what each replica printed.
        const step = async <T>(what: string, work: Promise<T>, ms = 45_000): Promise<T> => {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not done after ${ms}ms`)), ms)));
          try {
            return await Promise.race([work, late]);
          } catch (err) {
            const redis = new Redis(REDIS_URL);
            const key = `${prefix}:queue:hook`;
            const state = await Promise.all([
              redis.xlen(key),
              redis.call('XPENDING', key, 'delivery'),
              redis.call('XINFO', 'CONSUMERS', key, 'delivery'),
              redis.xrange(key, '-', '+'),
            ]).catch((e: Error) => e.message);
            await redis.quit();
            throw new Error(`${what}: ${(err as Error).message}\n--- redis: ${JSON.stringify(state)}\n--- receiver: ${hook.requests.length} requests; events by replica and method: ${JSON.stringify(bySource())}\n--- redis commands: ${missing()}\n--- replica a:\n${a.stderr.join('\n')}\n--- replica b:\n${b.stderr.join('\n')}`);
          } finally {
            clearTimeout(timer);
          }
        };
        await step('pulls', Promise.all([pulls(a.url, 25), pulls(b.url, 25)]), 30_000);
        await step('first deliveries', hook.until((r) => r.events.length >= 10, 30_000));
        await a.stop('SIGKILL'); // mid-delivery: whatever a had taken and not acknowledged is now stuck
        await step('the survivor takes over', hook.until((r) => new Set(r.events.map((e) => e.id)).size === 53, 45_000));
        await step('graceful stop of b', b.stop('SIGTERM'), 15_000);
        const ids = hook.events.map((e) => e.id);
        expect(new Set(ids).size).toBe(53);
        // At-least-once: only an event a was delivering at the moment it died may arrive twice.
        expect(ids.length - new Set(ids).size).toBeLessThanOrEqual(1);
        expect(hook.events.filter((e) => e.request.method === 'HEAD')).toHaveLength(ids.length - 3);
      } finally {
        monitor.disconnect();
        monitorClient.disconnect();
      }
    }, 120_000);
  });
});

