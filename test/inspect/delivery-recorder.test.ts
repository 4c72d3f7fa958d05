import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeliveryRecorder, type NewAttempt } from '../../lib/inspect/delivery-recorder';
import { MemoryDeliveryLog } from '../../lib/stores/memory-delivery-log';
import { SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { makeEvent, makeEvents } from '../helpers/events';

const attemptOf = (eventIds: string[]): NewAttempt => ({ endpoint: 'hooks', eventIds, attempt: 1, status: 200, error: null, latencyMs: 1, response: '', test: false });

describe('DeliveryRecorder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'recorder-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes in batches behind the caller, and a read sees everything recorded before it', async () => {
    const log = new SqliteDeliveryLog({ path: path.join(dir, 'log.db') });
    const recorder = new DeliveryRecorder(log, { flushMs: 60_000 });
    const events = makeEvents(3);
    recorder.events('hooks', 'pending', events);
    const a = recorder.attempt(attemptOf(events.map((e) => e.id)));
    recorder.events('hooks', 'delivered', events);
    // Nothing is written yet (the flush timer is a minute away): the caller did not wait.
    expect((await log.attempts('hooks', { limit: 10 })).items).toEqual([]);
    expect((await recorder.attempts('hooks', { limit: 10 })).items.map((x) => x.id)).toEqual([a.id]);
    expect((await recorder.search({ endpoints: ['hooks'], limit: 10, state: 'delivered' })).items).toHaveLength(3);
    await recorder.close();
  });

  it('tells its attempt listeners at once, and forgets a listener that stops', async () => {
    const recorder = new DeliveryRecorder(new MemoryDeliveryLog());
    const seen: string[] = [];
    const stop = recorder.onAttempt((a) => seen.push(a.id));
    const first = recorder.attempt(attemptOf(['x']));
    expect(seen).toEqual([first.id]);
    stop();
    recorder.attempt(attemptOf(['y']));
    expect(seen).toEqual([first.id]);
    expect(recorder.listenerCount).toBe(0);
    await recorder.close();
  });

  it('keeps the newest entries while the log store is down, counts those it drops, and says so once', async () => {
    const log = new SqliteDeliveryLog({ path: path.join(dir, 'down.db') });
    await log.close(); // every write now fails
    const errors: string[] = [];
    const recorder = new DeliveryRecorder(log, { flushMs: 1, bufferLimit: 10, onError: (err) => errors.push(err.message) });
    for (let i = 0; i < 25; i++) recorder.attempt(attemptOf([makeEvent().id]));
    recorder.events('hooks', 'pending', makeEvents(5));
    // A read does not hang on a store that is down: the write was tried, and failed.
    await recorder.flush();
    expect(recorder.dropped).toBe(20);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^delivery log sqlite:.*down\.db: .*closed; 10 entries kept to try again, \d+ dropped so far$/);
    for (let i = 0; i < 5; i++) recorder.attempt(attemptOf([makeEvent().id]));
    await recorder.flush();
    expect(recorder.dropped).toBe(25);
    expect(errors).toHaveLength(1);
  });
});
