import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeliveryRecorder, type NewAttempt } from '../../lib/inspect/delivery-recorder';
import { MemoryDeliveryLog } from '../../lib/stores/memory-delivery-log';
import type { DeliveryLog, LogEntry } from '../../lib/stores/delivery-log';
import { SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { makeEvent, makeEvents } from '../helpers/events';
import { waitFor } from '../helpers/wait';

/** A memory log that holds each write until it is let go, and keeps a copy of what it was given. */
function heldLog() {
  const given: LogEntry[][] = [];
  const held: (() => void)[] = [];
  const log = new MemoryDeliveryLog({ attempts: 100_000 });
  const write = log.write.bind(log);
  log.write = async (entries) => {
    given.push(entries.map((e) => (e.kind === 'attempt' ? e : { ...e, events: [...e.events] })));
    await new Promise<void>((resolve) => held.push(resolve));
    return write(entries);
  };
  return { log, given, held };
}

const attemptOf = (eventIds: string[]): NewAttempt => ({ endpoint: 'hooks', eventIds, attempt: 1, status: 200, error: null, latencyMs: 1, response: '', test: false });

describe('DeliveryRecorder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'recorder-'));
  });
  afterEach(() => {
    // A test that failed while it had Date.now() replaced must not leave it so for the next.
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

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

  it('writes what a caller records without letting the event loop turn, well before the buffer is full', async () => {
    const recorder = new DeliveryRecorder(new MemoryDeliveryLog(), { flushMs: 60_000, bufferLimit: 400 });
    const events = makeEvents(2000);
    for (const e of events) {
      recorder.events('hooks', 'pending', [e]);
      await Promise.resolve();
    }
    expect(recorder.dropped).toBe(0);
    expect((await recorder.search({ endpoints: ['hooks'], limit: 5000 })).items).toHaveLength(2000);
    await recorder.close();
  });

  it('joins events that follow one another into one entry, and past the limit drops the oldest events of it', async () => {
    const { log, given, held } = heldLog();
    const recorder = new DeliveryRecorder(log, { flushMs: 60_000, bufferLimit: 3 });
    const events = makeEvents(6);
    // In one millisecond, the events take the next seqs one after the other.
    const now = jest.spyOn(Date, 'now').mockReturnValue(Date.now());
    for (const e of events) recorder.events('hooks', 'pending', [e]);
    now.mockRestore();
    // The first went out at once; the next five waited behind it, as one entry, and the oldest two were dropped.
    expect(recorder.dropped).toBe(2);
    const flushed = recorder.flush();
    held.shift()!();
    await waitFor(() => held.length === 1);
    held.shift()!();
    await flushed;
    expect(given.map((entries) => entries.map((e) => (e.kind === 'events' ? e.events.map((x) => x.id) : [])))).toEqual([[[events[0].id]], [events.slice(3).map((e) => e.id)]]);
    const [first] = given[0] as Extract<LogEntry, { kind: 'events' }>[];
    const [joined] = given[1] as Extract<LogEntry, { kind: 'events' }>[];
    expect(joined.seq).toBe(first.seq + 3);
    expect((await recorder.search({ endpoints: ['hooks'], limit: 10 })).items.map((e) => [e.seq, e.event.id])).toEqual(
      [0, 3, 4, 5].reverse().map((i) => [String(first.seq + i), events[i].id]),
    );
    await recorder.close();
  });

  /** A log of this kind whose writes are copied into `given` as they come. */
  function watched<T extends DeliveryLog>(log: T): { log: T; given: LogEntry[][] } {
    const given: LogEntry[][] = [];
    const write = log.write.bind(log);
    log.write = async (entries) => {
      given.push([...entries]);
      return write(entries);
    };
    return { log, given };
  }
  const shown = (entries: LogEntry[]) => entries.map((e) => (e.kind === 'events' ? `${e.state} ${e.events.map((x) => x.id).join(' ')}` : e.kind));

  it("leaves an event accepted just before the timer's write for the next, with its delivery, where the log writes it once then (SQLite)", async () => {
    const { log, given } = watched(new SqliteDeliveryLog({ path: path.join(dir, 'hold.db') }));
    const recorder = new DeliveryRecorder(log, { flushMs: 50 });
    const [early, late, quick, readNow] = makeEvents(4);
    recorder.events('hooks', 'pending', [early]); // sets the timer: 50 ms
    // A timer can fire some ms before Date.now() says its time is up (libuv counts from its
    // loop's cached clock): seen from the clock, this one fires 45 ms after `early`. The
    // entry that set the timer is written all the same.
    const realNow = Date.now.bind(Date);
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 5);
    await new Promise((r) => setTimeout(r, 30));
    recorder.events('hooks', 'pending', [quick]); // 20 ms old when the timer writes, and delivered by then
    recorder.attempt(attemptOf([quick.id]));
    recorder.events('hooks', 'delivered', [quick]);
    recorder.events('hooks', 'pending', [late]); // as young, not delivered yet
    await waitFor(() => given.length === 1);
    expect(shown(given[0])).toEqual([`pending ${early.id}`, `pending ${quick.id}`, 'attempt', `delivered ${quick.id}`]);
    clock.mockRestore();
    recorder.attempt(attemptOf([late.id]));
    recorder.events('hooks', 'delivered', [late]);
    await waitFor(() => given.length === 2);
    expect(shown(given[1])).toEqual([`pending ${late.id}`, 'attempt', `delivered ${late.id}`]);
    expect((await recorder.event(late.id, ['hooks']))[0]).toMatchObject({ state: 'delivered', attempts: 1 });
    // A reader does not wait for the timer: what was recorded before it is written first.
    recorder.events('hooks', 'pending', [readNow]);
    expect((await recorder.search({ endpoints: ['hooks'], id: readNow.id, limit: 1 })).items).toHaveLength(1);
    await recorder.close();
  });

  it('holds nothing back for the memory log, whose changes cost no more than its new events', async () => {
    const { log, given } = watched(new MemoryDeliveryLog());
    const recorder = new DeliveryRecorder(log, { flushMs: 50 });
    const [early, late] = makeEvents(2);
    recorder.events('hooks', 'pending', [early]);
    await new Promise((r) => setTimeout(r, 30));
    recorder.events('hooks', 'pending', [late]);
    await waitFor(() => given.length === 1);
    expect(shown(given[0])).toEqual([`pending ${early.id}`, `pending ${late.id}`]);
    await recorder.close();
  });

  it('keeps the newest entries of a long burst while a write is under way', async () => {
    const { log, given, held } = heldLog();
    const recorder = new DeliveryRecorder(log, { flushMs: 60_000, bufferLimit: 2000 });
    const recorded = Array.from({ length: 6000 }, () => recorder.attempt(attemptOf([makeEvent().id])));
    // The first 250 went out at once; of the rest, the newest 2000 wait.
    expect(given[0]).toHaveLength(250);
    expect(recorder.dropped).toBe(6000 - 250 - 2000);
    const flushed = recorder.flush();
    held.shift()!();
    await waitFor(() => held.length === 1);
    held.shift()!();
    await flushed;
    expect(given[1].map((e) => (e.kind === 'attempt' ? e.attempt.id : ''))).toEqual(recorded.slice(-2000).map((a) => a.id));
    expect((await recorder.attempts('hooks', { limit: 10_000 })).items).toHaveLength(2250);
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
