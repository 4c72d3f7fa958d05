// Dead letters are never the place an accepted event disappears: a dead-letter write that
// fails leaves the events in the queue, and a replay queues them before removing them.
import Redis from 'ioredis';
import type { Event } from '../../lib/model/event';
import { Queue } from '../../lib/deliver/queue';
import { replayDeadLetters } from '../../lib/stores/dead-letter-store';
import { MemoryDeadLetterStore } from '../../lib/stores/memory-dead-letters';
import { MemoryStore } from '../../lib/stores/memory-store';
import { RedisDeadLetterStore } from '../../lib/stores/redis-dead-letters';
import { makeEvents } from '../helpers/events';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from '../helpers/redis';
import { FlakySink } from '../helpers/sinks';
import { waitFor } from '../helpers/wait';

/** A memory dead-letter store whose first `failures` adds fail, as a store that is briefly down. */
class FailingFirst extends MemoryDeadLetterStore {
  constructor(private failures: number) {
    super();
  }
  override async add(events: readonly Event[], reason: string): Promise<void> {
    if (this.failures-- > 0) throw new Error('dead-letter store unreachable');
    return super.add(events, reason);
  }
}

describe('a dead-letter write that fails', () => {
  it('leaves the events in the queue, in order, until the dead-letter store takes them', async () => {
    const store = new MemoryStore();
    const deadLetters = new FailingFirst(1);
    const errors: string[] = [];
    // The sink below gives up on the first event every time, and takes the others.
    const events = makeEvents(3);
    const sink = new FlakySink(() => false);
    const below = { write: async (e: readonly Event[]) => (e[0].id === events[0].id ? Promise.reject(new Error('410-free permanent failure')) : sink.write(e)), close: () => sink.close() };
    const queue = new Queue(below, { store, deadLetters, maxEvents: 1, onError: (e) => errors.push(e.message) });
    try {
      await queue.write(events);
      await waitFor(async () => (await deadLetters.count()) === 1 && sink.events.length === 2, {
        describe: () => `${sink.events.length} delivered; errors: ${errors.join(' | ')}`,
      });
      expect(errors.some((m) => m.includes('dead-letter store unreachable; the events stay in the queue'))).toBe(true);
      expect((await deadLetters.list()).map((l) => l.event.id)).toEqual([events[0].id]);
      // The rest waited behind it: order per endpoint is kept.
      expect(sink.events.map((e) => e.id)).toEqual([events[1].id, events[2].id]);
      expect(await store.pending()).toBe(0);
    } finally {
      await queue.close();
    }
  });
});

describe('replaying dead letters', () => {
  it('keeps them when the queue refuses them', async () => {
    const deadLetters = new MemoryDeadLetterStore();
    const events = makeEvents(2);
    await deadLetters.add(events, 'gave up');
    await expect(replayDeadLetters(deadLetters, async () => Promise.reject(new Error('queue store down')))).rejects.toThrow('queue store down');
    expect((await deadLetters.list()).map((l) => l.event.id)).toEqual(events.map((e) => e.id));
  });

  it('queues the chosen ones, oldest first, then removes them', async () => {
    const deadLetters = new MemoryDeadLetterStore();
    const events = makeEvents(3);
    await deadLetters.add(events, 'gave up');
    const queued: Event[] = [];
    const replayed = await replayDeadLetters(deadLetters, async (e) => void queued.push(...e), [events[2].id, events[0].id]);
    expect(replayed.map((e) => e.id)).toEqual([events[0].id, events[2].id]);
    expect(queued).toEqual(replayed);
    expect((await deadLetters.list()).map((l) => l.event.id)).toEqual([events[1].id]);
  });
});

describeWithRedis('RedisDeadLetterStore', () => {
  it('rejects an add whose pipelined writes failed, instead of resolving', async () => {
    const prefix = uniquePrefix('dlq-fail');
    const redis = new Redis(REDIS_URL);
    // A string where the stream should be: every XADD in the pipeline answers WRONGTYPE.
    await redis.set(`${prefix}:dead:e`, 'not a stream');
    const store = new RedisDeadLetterStore({ url: REDIS_URL, queue: 'e', prefix });
    try {
      await expect(store.add(makeEvents(2), 'gave up')).rejects.toThrow(/dead letters not written: WRONGTYPE/);
    } finally {
      await store.close();
      await redis.quit();
      await deletePrefix(prefix);
    }
  });
});
