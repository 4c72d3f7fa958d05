import Redis from 'ioredis';
import { ConfigError, parseNotificationsConfig, StoreOpenError } from '../../lib';
import { RedisStore } from '../../lib/stores/redis-store';
import { makeEvents } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';

describe('queue.url names its database', () => {
  it('refuses a path that is not a database number', () => {
    expect(() => parseNotificationsConfig({ queue: { type: 'redis', url: 'redis://127.0.0.1:6379/queue' } })).toThrow(ConfigError);
    expect(() => parseNotificationsConfig({ queue: { type: 'redis', url: 'redis://127.0.0.1:6379/queue' } })).toThrow(
      /notifications\.queue\.url: the path names the database, a number such as \/0, got "\/queue"/,
    );
    expect(parseNotificationsConfig({ queue: { type: 'redis', url: 'redis://127.0.0.1:6379/3' } }).queue.url).toBe('redis://127.0.0.1:6379/3');
  });
});

describeWithRedis('RedisStore and the database of its URL', () => {
  it('fails to open on a database the server does not have, instead of writing to database 0', async () => {
    const store = new RedisStore({ url: `${REDIS_URL.replace(/\/\d*$/, '')}/99`, queue: 'e', prefix: uniquePrefix('db99') });
    const err = await store.open().catch((e: Error) => e);
    expect(err).toBeInstanceOf(StoreOpenError);
    expect((err as Error).message).toMatch(/\/99: database 99 cannot be selected on this server: ERR DB index is out of range/);
    await store.close();
  });

  it('writes to the database its URL names', async () => {
    const prefix = uniquePrefix('db3');
    const store = new RedisStore({ url: `${REDIS_URL.replace(/\/\d*$/, '')}/3`, queue: 'e', prefix });
    const db3 = new Redis(`${REDIS_URL.replace(/\/\d*$/, '')}/3`);
    const db0 = new Redis(REDIS_URL);
    try {
      await store.append(makeEvents(2));
      expect(await db3.xlen(`${prefix}:queue:e`)).toBe(2);
      expect(await db0.exists(`${prefix}:queue:e`)).toBe(0);
    } finally {
      await store.close();
      await db3.del(`${prefix}:queue:e`);
      await db3.quit();
      await db0.quit();
      await deletePrefix(prefix);
    }
  });
});
