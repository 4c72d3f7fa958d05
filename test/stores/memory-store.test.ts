import { StoreFullError } from '../../lib/stores/queue-store';
import { MemoryDeadLetterStore } from '../../lib/stores/memory-dead-letters';
import { MemoryStore } from '../../lib/stores/memory-store';
import { makeEvents } from '../helpers/events';
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
});

describe('MemoryDeadLetterStore', () => {
  it('forgets the oldest dead letters past its limit', async () => {
    const store = new MemoryDeadLetterStore({ limit: 2 });
    const events = makeEvents(3);
    await store.add(events, 'down');
    expect((await store.list()).map((l) => l.event.id)).toEqual([events[1].id, events[2].id]);
  });
});
