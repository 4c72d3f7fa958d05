import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeEnvelope } from '../../lib/codec/envelope';
import { SqliteDeadLetterStore } from '../../lib/stores/sqlite-dead-letters';
import { StoreClosedError, StoreOpenError, type QueueStore } from '../../lib/stores/queue-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvent, makeEvents } from '../helpers/events';
import { describeDeadLetterContract, describeStoreContract, drain } from './store-contract';
import { sqliteFiles } from '../helpers/sqlite-files';

const FOREVER_MS = 10 * 60 * 1000;
const never = () => new AbortController().signal;

const files = sqliteFiles('store');
const { newFile, open } = files;

// A poll longer than any test: a waiting take can only end by being woken.
const fileOf = new WeakMap<QueueStore, string>();
const storeOn = (file: string) => {
  const store = new SqliteStore({ path: file, queue: 'hooks', pollMs: FOREVER_MS });
  fileOf.set(store, file);
  return store;
};
describeStoreContract('SqliteStore', () => storeOn(newFile()), (closed) => storeOn(fileOf.get(closed)!));
describeDeadLetterContract('SqliteDeadLetterStore', () => new SqliteDeadLetterStore({ path: newFile(), queue: 'hooks' }));

describe('SqliteStore', () => {

  it('keeps events through close and reopen, byte for byte', async () => {
    const file = newFile();
    const events = makeEvents(20);
    const first = new SqliteStore({ path: file, queue: 'hooks' });
    await first.append(events);
    await first.ack(await first.take(5, never(), 0));
    await first.close();

    const again = open(new SqliteStore({ path: file, queue: 'hooks' }));
    expect(await again.pending()).toBe(15);
    const out = await drain(again);
    expect(encodeEnvelope(out)).toBe(encodeEnvelope(events.slice(5)));
  });

  it('keeps each endpoint queue in one file apart from the others', async () => {
    const file = newFile();
    const a = open(new SqliteStore({ path: file, queue: 'a' }));
    const b = open(new SqliteStore({ path: file, queue: 'b' }));
    const forA = makeEvents(3);
    const forB = makeEvents(2);
    await a.append(forA);
    await b.append(forB);
    expect(await a.pending()).toBe(3);
    expect(await b.pending()).toBe(2);
    await b.ack(await b.take(10, never(), 0));
    expect((await drain(a)).map((e) => e.id)).toEqual(forA.map((e) => e.id));
    expect(await b.pending()).toBe(0);
  });

  it('wakes a take on another store of the same file and queue, not of another queue', async () => {
    const file = newFile();
    const taker = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: FOREVER_MS }));
    const appender = open(new SqliteStore({ path: path.join(files.dir, '.', path.basename(file)), queue: 'hooks' }));
    const other = open(new SqliteStore({ path: file, queue: 'other' }));
    const taking = taker.take(5, never(), FOREVER_MS);
    await other.append(makeEvents(1));
    const event = makeEvent();
    await appender.append([event]);
    expect((await taking).map((s) => s.event.id)).toEqual([event.id]);
  });

  it('ends a waiting take with nothing when closed, and refuses use after close', async () => {
    const store = new SqliteStore({ path: newFile(), queue: 'hooks', pollMs: FOREVER_MS });
    const taking = store.take(5, never(), FOREVER_MS);
    await store.close();
    await expect(taking).resolves.toEqual([]);
    await expect(store.append(makeEvents(1))).rejects.toBeInstanceOf(StoreClosedError);
    await expect(store.pending()).rejects.toThrow(/sqlite:.*store-\d+\.db: cannot count pending events, the store is closed/);
    await expect(store.close()).resolves.toBeUndefined();
  });

  it('names the store and path when the file is not a database', () => {
    const file = path.join(files.dir, 'garbage.db');
    writeFileSync(file, Buffer.alloc(8192, 'not a database, just some text. '));
    const opening = () => new SqliteStore({ path: file, queue: 'hooks' });
    expect(opening).toThrow(StoreOpenError);
    expect(opening).toThrow(`sqlite store at ${file}: file is not a database`);
  });

  it('names the store and path when the directory does not exist', () => {
    const file = path.join(files.dir, 'no-such-dir', 'q.db');
    expect(() => new SqliteStore({ path: file, queue: 'hooks' })).toThrow(
      new RegExp(`^sqlite store at ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*directory does not exist`),
    );
  });

  it('refuses a file written by a newer schema instead of misreading it', () => {
    const file = newFile();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteStore({ path: file, queue: 'hooks' })).toThrow(
      `sqlite store at ${file}: schema version 99 is newer than this library understands (2)`,
    );
  });

  it('moves a row that is not an event aside and reports it, without stalling the queue', async () => {
    const file = newFile();
    const reports: Error[] = [];
    const store = open(new SqliteStore({ path: file, queue: 'hooks', onCorrupt: (err) => reports.push(err) }));
    const before = makeEvent();
    const after = makeEvent();
    await store.append([before]);
    const db = open({ raw: new Database(file), async close() { this.raw.close(); } }).raw;
    db.prepare('INSERT INTO queue_events (queue, body) VALUES (?, ?)').run('hooks', '{"id": "x", "timest');
    await store.append([after]);

    expect((await drain(store)).map((e) => e.id)).toEqual([before.id, after.id]);
    expect(reports).toHaveLength(1);
    expect(reports[0].message).toMatch(/^sqlite:.*: queue hooks: .*JSON.*; moved to queue_quarantine$/);
    expect(db.prepare('SELECT queue, body FROM queue_quarantine').all()).toEqual([
      { queue: 'hooks', body: '{"id": "x", "timest' },
    ]);
  });

  it('keeps dead letters in the same file as the queue, through reopen', async () => {
    const file = newFile();
    const queue = new SqliteStore({ path: file, queue: 'hooks' });
    const dead = new SqliteDeadLetterStore({ path: file, queue: 'hooks' });
    const events = makeEvents(2);
    await queue.append(makeEvents(1));
    await dead.add(events, 'HTTP 410');
    await Promise.all([queue.close(), dead.close()]);

    const db = new Database(file, { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    db.close();
    expect(tables).toEqual(expect.arrayContaining(['dead_letters', 'queue_events']));
    const reopened = open(new SqliteDeadLetterStore({ path: file, queue: 'hooks' }));
    const other = open(new SqliteDeadLetterStore({ path: file, queue: 'elsewhere' }));
    expect(await other.count()).toBe(0);
    expect(encodeEnvelope(await reopened.replay())).toBe(encodeEnvelope(events));
  });

  it('keeps every appended event when the process is killed with SIGKILL', async () => {
    const file = newFile();
    // A store in this process sees the child's appends through its poll.
    const watcher = open(new SqliteStore({ path: file, queue: 'hooks', pollMs: 10 }));
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, 'sqlite-append-child.ts'), file, 'hooks'], {
      cwd: path.resolve(__dirname, '../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const firstSeen = await watcher.take(1, never(), FOREVER_MS);

    const printed: string[] = [];
    let buffer = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        printed.push(...lines);
        if (printed.length >= 300) resolve();
      });
      child.on('exit', () => reject(new Error(`child exited early after ${printed.length} appends`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    await watcher.close();

    const reopened = open(new SqliteStore({ path: file, queue: 'hooks' }));
    const stored = (await drain(reopened, 500)).map((e) => e.id);
    // Everything the child reported appended is there, in order; at most a few more
    // whose append finished but whose id it had not yet printed.
    expect(stored.slice(0, printed.length)).toEqual(printed);
    expect(firstSeen.map((s) => s.event.id)).toEqual([printed[0]]);
  });
});
