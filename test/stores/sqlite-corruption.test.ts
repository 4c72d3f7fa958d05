// A damaged SQLite file: found when the store opens (PRAGMA quick_check) and when the
// damage shows up later, and never a loop of taking events that cannot be acknowledged.
// The damage is real: garbage written over pages of a real file.
import Database from 'better-sqlite3';
import { SqliteDeadLetterStore } from '../../lib/stores/sqlite-dead-letters';
import { StoreCorruptError, StoreOpenError, type StoredEvent } from '../../lib/stores/queue-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvents } from '../helpers/events';
import { leafPages, prepareTouch, smash, sqliteHeader, touchFromElsewhere } from '../helpers/sqlite-damage';
import { sqliteFiles } from '../helpers/sqlite-files';

const never = () => new AbortController().signal;

const { newFile, open } = sqliteFiles('damaged');

/** A closed store file holding `appended` events of which the first `acked` were acknowledged. */
async function storeFile(appended: number, acked = 0): Promise<string> {
  const file = newFile();
  const store = new SqliteStore({ path: file, queue: 'hooks' });
  await store.append(makeEvents(appended));
  if (acked > 0) await store.ack(await store.take(acked, never(), 0));
  await store.close(); // checkpoints: every page is in the file itself, none in the WAL
  const db = new Database(file);
  prepareTouch(db);
  db.close();
  return file;
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('a SqliteStore on a damaged file', () => {
  it('refuses to open a file whose table pages are garbage, naming the file, quick_check and the way out', async () => {
    const file = await storeFile(500);
    const leaves = leafPages(file, 'queue_events');
    expect(leaves.length).toBeGreaterThan(4);
    smash(file, leaves.slice(1, 3));

    const opening = () => new SqliteStore({ path: file, queue: 'hooks' });
    expect(opening).toThrow(StoreOpenError);
    expect(opening).toThrow(new RegExp(`^sqlite store at ${escaped(file)}: PRAGMA quick_check found the file damaged \\(.*malformed.*\\); `));
    expect(opening).toThrow(/move .* aside/);
    // The dead-letter store lives in the same file, and says the same.
    expect(() => new SqliteDeadLetterStore({ path: file, queue: 'hooks' })).toThrow(/PRAGMA quick_check found the file damaged/);
  });

  it("refuses to open a file with a broken freelist, quoting quick_check's findings", async () => {
    const file = await storeFile(500, 200);
    const { freelistTrunk, freePages } = sqliteHeader(file);
    expect(freePages).toBeGreaterThan(0);
    smash(file, [freelistTrunk]);

    let err: unknown;
    try {
      open(new SqliteStore({ path: file, queue: 'hooks' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreOpenError);
    expect((err as Error).message).toMatch(
      new RegExp(`^sqlite store at ${escaped(file)}: PRAGMA quick_check found the file damaged \\(Freelist: .*on page ${freelistTrunk}; .*\\)`),
    );
  });

  it('opens a sound file, and a newly created one', async () => {
    const file = await storeFile(300, 100);
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    expect(await store.pending()).toBe(200);
    const fresh = open(new SqliteStore({ path: newFile(), queue: 'hooks' }));
    expect(await fresh.pending()).toBe(0);
  });

  it('rejects take with StoreCorruptError when pages are damaged after it opened, and keeps refusing', async () => {
    const file = await storeFile(500);
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    smash(file, leafPages(file, 'queue_events').slice(0, 3));
    touchFromElsewhere(file);

    const err = await store.take(10, never(), 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as StoreCorruptError).store).toBe(`sqlite:${file}`);
    expect((err as Error).message).toMatch(
      new RegExp(`^sqlite:${escaped(file)}: the store is damaged \\(taking events: database disk image is malformed \\[SQLITE_CORRUPT\\S*\\]; .*\\); delivery from it is stopped$`),
    );
    expect(((err as Error).cause as { code: string }).code).toMatch(/^SQLITE_CORRUPT/);
    await expect(store.take(10, never(), 0)).rejects.toBeInstanceOf(StoreCorruptError);
    // New events are refused rather than written into a damaged file nobody delivers from.
    await expect(store.append(makeEvents(1))).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('rejects ack with StoreCorruptError, and never hands out again the events it could not acknowledge', async () => {
    // The reported loop: reads work, but acknowledging (which frees pages onto the
    // damaged freelist) fails, and the same events went out again and again.
    const file = await storeFile(500, 200);
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    const batch = await store.take(100, never(), 0);
    expect(batch).toHaveLength(100);
    smash(file, [sqliteHeader(file).freelistTrunk]);
    touchFromElsewhere(file);

    const err = await store.ack(batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    expect((err as Error).message).toMatch(/\(acknowledging events: database disk image is malformed \[SQLITE_CORRUPT\S*\]; /);

    // What a delivery loop would do next: take again. Each take must fail, not return
    // the unacknowledged events once more.
    const handedOut: StoredEvent[] = [];
    for (let i = 0; i < 50; i++) {
      try {
        handedOut.push(...(await store.take(100, never(), 0)));
      } catch (e) {
        expect(e).toBeInstanceOf(StoreCorruptError);
      }
    }
    expect(handedOut).toEqual([]);
    // The rows are still readable (nothing was lost by refusing): pending counts them.
    expect(await store.pending()).toBe(300);

    // And the next start refuses the file, naming what quick_check found.
    await store.close();
    expect(() => new SqliteStore({ path: file, queue: 'hooks' })).toThrow(/PRAGMA quick_check found the file damaged \(Freelist: /);
  });

  it("rejects the dead-letter store's operations with StoreCorruptError when its pages are damaged after it opened", async () => {
    const file = await storeFile(0);
    const dead = open(new SqliteDeadLetterStore({ path: file, queue: 'hooks' }));
    await dead.add(makeEvents(300), 'HTTP 500 from http://hooks.test/');
    await dead.close();
    const again = open(new SqliteDeadLetterStore({ path: file, queue: 'hooks' }));
    smash(file, leafPages(file, 'dead_letters').slice(0, 3));
    touchFromElsewhere(file);
    await expect(again.list({ limit: 10 })).rejects.toThrow(StoreCorruptError);
    await expect(again.list({ limit: 10 })).rejects.toThrow(
      new RegExp(`^sqlite:${escaped(file)}: the store is damaged \\(listing dead letters: database disk image is malformed \\[SQLITE_CORRUPT`),
    );
    await expect(again.replay()).rejects.toThrow(/replaying dead letters: database disk image is malformed/);
  });

  it('reports damage met while counting pending events as StoreCorruptError too', async () => {
    const file = await storeFile(500);
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    smash(file, [...leafPages(file, 'queue_events_by_queue'), ...leafPages(file, 'queue_events').slice(0, 2)]);
    touchFromElsewhere(file);
    await expect(store.pending()).rejects.toThrow(StoreCorruptError);
    await expect(store.pending()).rejects.toThrow(/counting pending events: database disk image is malformed/);
  });
});
