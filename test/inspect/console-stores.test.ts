import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { ConfigError, createNotifications, createStatsRouter, DEFAULTS, parseNotificationsConfig, type Notifications } from '../../lib';
import { makeEvent } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

const API = '/debug/notifications/api';

describe('notifications.log', () => {
  it('is read from YAML with Distribution-style durations, defaults from DEFAULTS, and checked', () => {
    expect(parseNotificationsConfig({}).log).toEqual({ attempts: DEFAULTS.log.attempts, events: DEFAULTS.log.events, retentionMs: DEFAULTS.log.retentionMs });
    expect(parseNotificationsConfig({ log: { attempts: 50, events: 0, retention: '1h30m' } }).log).toEqual({ attempts: 50, events: 0, retentionMs: 5_400_000 });
    expect(() => parseNotificationsConfig({ log: { attempts: -1 } })).toThrow(ConfigError);
    expect(() => parseNotificationsConfig({ log: { retention: '1 day' } })).toThrow(/notifications\.log\.retention: invalid duration/);
    expect(() => parseNotificationsConfig({ log: { retension: '1h' } })).toThrow(/notifications\.log\.retension: unknown field; did you mean retention\?/);
  });

  it("has its defaults in the README's configuration table", () => {
    const readme = readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');
    const row = (field: string) => new RegExp(`^\\| \`${field.replace('.', '\\.')}\` \\| \`([^\`]*)\``, 'm').exec(readme)?.[1];
    expect(row('log.attempts')).toBe(String(DEFAULTS.log.attempts));
    expect(row('log.events')).toBe(String(DEFAULTS.log.events));
    expect(row('log.retention')).toBe(`${DEFAULTS.log.retentionMs / 3_600_000}h`);
  });
});

describe('the console on a SQLite queue', () => {
  let dir: string;
  let receiver: TestReceiver;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'console-sqlite-'));
    receiver = await new TestReceiver().start();
  });
  afterEach(async () => {
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps attempts and events in the queue file, across a restart', async () => {
    const config = { queue: { type: 'sqlite', path: path.join(dir, 'n.db'), spooldir: path.join(dir, 'spool') }, endpoints: [{ name: 'hooks', url: receiver.url }] };
    const event = makeEvent();
    let n: Notifications = createNotifications(config, { onError: () => undefined });
    await n.ready();
    await n.endpoint('hooks').write([event]);
    await receiver.until((r) => r.events.length === 1);
    await waitFor(() => n.endpoint('hooks').stats.counters.Pending === 0);
    await n.close();

    n = createNotifications(config, { onError: () => undefined });
    await n.ready();
    try {
      const app = express().use(createStatsRouter(n));
      const attempts = await request(app).get(`${API}/endpoints/hooks/attempts`).expect(200);
      expect(attempts.body.attempts).toEqual([expect.objectContaining({ eventIds: [event.id], status: 200, attempt: 1 })]);
      const found = await request(app).get(`${API}/events?digest=${encodeURIComponent(event.target.digest!)}`).expect(200);
      expect(found.body.events).toEqual([expect.objectContaining({ id: event.id, state: 'delivered', attempts: 1 })]);
    } finally {
      await n.close();
    }
  });
});

describeWithRedis('the console on a Redis queue', () => {
  let receiver: TestReceiver;
  let prefix: string;
  const instances: Notifications[] = [];
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
    prefix = uniquePrefix('console');
  });
  afterEach(async () => {
    await Promise.all(instances.splice(0).map((n) => n.close()));
    await receiver.stop();
    await deletePrefix(prefix);
  });

  it("shows one replica's attempts and events from another replica's API", async () => {
    const config = { queue: { type: 'redis', url: REDIS_URL, prefix, spooldir: path.join(tmpdir(), `${prefix}-spool`) }, endpoints: [{ name: 'hooks', url: receiver.url }] };
    const a = createNotifications(config, { onError: () => undefined });
    instances.push(a);
    await a.ready();
    const event = makeEvent();
    await a.endpoint('hooks').write([event]);
    await receiver.until((r) => r.events.some((e) => e.id === event.id));
    // Replica b starts after a delivered: whatever it shows, it read from Redis.
    const b = createNotifications(config, { onError: () => undefined });
    instances.push(b);
    await b.ready();
    const appB = express().use(createStatsRouter(b));
    await waitFor(async () => (await request(appB).get(`${API}/endpoints/hooks/attempts`)).body.attempts.length === 1);
    const attempts = (await request(appB).get(`${API}/endpoints/hooks/attempts`).expect(200)).body.attempts;
    expect(attempts[0]).toMatchObject({ endpoint: 'hooks', eventIds: [event.id], status: 200 });
    await waitFor(async () => (await request(appB).get(`${API}/events/${event.id}`)).body.deliveries?.[0]?.state === 'delivered');
    const one = await request(appB).get(`${API}/events/${event.id}`).expect(200);
    expect(one.body.deliveries).toEqual([{ endpoint: 'hooks', state: 'delivered', attempts: [expect.objectContaining({ id: attempts[0].id })] }]);
    const byRepo = await request(appB).get(`${API}/events?repository=demo/app`).expect(200);
    expect(byRepo.body.events.map((e: { id: string }) => e.id)).toEqual([event.id]);
  });
});
