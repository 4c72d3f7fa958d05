// Two replicas' endpoints on one Redis queue: each one's Pending follows the store, not
// only its own writes and deliveries.
import { Endpoint } from '../../lib/deliver/endpoint';
import { RedisStore } from '../../lib/stores/redis-store';
import { DEFAULTS } from '../../lib/config/defaults';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

describeWithRedis('Endpoint stats with replicas on one Redis queue', () => {
  const prefix = uniquePrefix('endpoint-replicas');
  afterAll(() => deletePrefix(prefix));

  it("shows Pending 0 on the replica that queued the events once the other delivered them", async () => {
    const receiver = await new TestReceiver().start();
    // Replica A only queues (paused); replica B delivers what A queued.
    const a = new Endpoint({ name: 'hook', url: receiver.url }, { store: await RedisStore.connect({ url: REDIS_URL, prefix, queue: 'hook', consumer: 'a' }) });
    const b = new Endpoint({ name: 'hook', url: receiver.url }, { store: await RedisStore.connect({ url: REDIS_URL, prefix, queue: 'hook', consumer: 'b' }) });
    try {
      await a.start();
      await a.pause('this replica only queues');
      const events = makeEvents(12);
      await a.write(events);
      expect(a.stats.snapshot().Pending).toBe(12);
      await b.start();
      await receiver.until((r) => r.events.length === 12);
      // B counted none of A's events going in, and its own count comes back to 0.
      await waitFor(() => b.stats.snapshot().Pending === 0, { timeoutMs: DEFAULTS.stats.pendingResyncMs * 3 });
      // A wrote 12 and delivered none itself; its count follows the store.
      await waitFor(() => a.stats.snapshot().Pending === 0, { timeoutMs: DEFAULTS.stats.pendingResyncMs * 3 });
      expect(a.stats.oldestPendingAgeSeconds()).toBeNull();
    } finally {
      await a.close();
      await b.close();
      await receiver.stop();
    }
  }, 60_000);
});
