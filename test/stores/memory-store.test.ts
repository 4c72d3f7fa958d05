import { StoreFullError } from '../../lib/stores/queue-store';
import { MemoryDeadLetterStore } from '../../lib/stores/memory-dead-letters';
import { MemoryStore } from '../../lib/stores/memory-store';
import { makeEvents } from '../helpers/events';
import { collectGarbageNextTurn } from '../helpers/gc';
import { describeDeadLetterContract, describeStoreContract } from './store-contract';

describeStoreContract('MemoryStore', () => new MemoryStore());
describeDeadLetterContract('MemoryDeadLetterStore', () => new MemoryDeadLetterStore());

describe('MemoryStore', () => {
  it('refuses events past its limit with StoreFullError', async () => {
    const store = new MemoryStore({ limit: 3 });
    await store.append(makeEvents(2));
    await expect(store.append(makeEvents(2))).rejects.toBeInstanceOf(StoreFullError);
    expect(await store.pending()).toBe(2);
  });

  it('lets go of the events it was told were delivered while a backlog remains', async () => {
    const store = new MemoryStore();
    const signal = new AbortController().signal;
    // Refs made in a function of their own, so that only the store can hold the events.
    const appendBacklog = async () => {
      const events = makeEvents(10_000);
      await store.append(events);
      return events.slice(0, 3).map((e) => new WeakRef(e));
    };
    const delivered = await appendBacklog();
    // Two batches of 1,000 delivered, 8,000 still pending.
    for (let i = 0; i < 2; i++) await store.ack(await store.take(1_000, signal));
    const next = (await store.take(1, signal))[0];
    await collectGarbageNextTurn();
    expect(delivered.map((ref) => ref.deref())).toEqual([undefined, undefined, undefined]);
    expect(await store.pending()).toBe(8_000);
    expect(next.event).toBeDefined();
  });
});

describe('MemoryDeadLetterStore', () => {
  it('forgets the oldest dead letters past its limit', async () => {
    const store = new MemoryDeadLetterStore({ limit: 2 });
    const events = makeEvents(3);
    await store.add(events, 'down');
    expect((await store.list()).map((l) => l.event.id)).toEqual([events[1].id, events[2].id]);
  });
});
