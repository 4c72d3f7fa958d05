import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { DEFAULTS } from '../config/defaults';
import { sqliteDriver } from './drivers';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import {
  StoreClosedError,
  StoreCorruptError,
  StoreOpenError,
  type EndpointControl,
  type QueueStore,
  type StoredEvent,
} from './queue-store';

export interface SqliteStoreOptions {
  /** The database file; several endpoint queues (and their dead letters) may share one. */
  path: string;
  /** Which endpoint's queue this store holds; other queues in the same file are left alone. */
  queue: string;
  /**
   * How often a waiting `take` looks at the file, in ms. Appends through any store in this
   * process wake it at once; the poll is for appends made by another process.
   * @default 1000 (1s)
   */
  pollMs?: number;
  /**
   * How long a statement waits for another connection's write lock, in ms.
   * @default 5000 (5s)
   */
  busyTimeoutMs?: number;
  /**
   * SQLite's `synchronous` setting. `normal` (with WAL) keeps every committed append
   * through a crash or SIGKILL of the process; only a power loss or OS crash can undo the
   * last commits. `full` also fsyncs each commit, for power loss, at several times the cost.
   * @default 'normal'
   */
  synchronous?: 'normal' | 'full';
  /**
   * Called when a stored row cannot be decoded as an event. The row is moved to the
   * `queue_quarantine` table (so one bad row cannot stall the queue) and left for a person.
   */
  onCorrupt?(err: Error): void;
  /**
   * How long the lease of the queue's one consumer lasts unless renewed, in ms. A killed
   * holder's lease runs out after this; then another process's `take` takes it over.
   * @default 10000 (10s)
   */
  leaseMs?: number;
  /**
   * How often the holder renews its lease, in ms; less than `leaseMs`, with room for a
   * busy event loop or a slow disk.
   * @default 3000 (3s)
   */
  leaseRenewMs?: number;
}

/**
 * The schema version this code writes; a newer file is refused rather than misread.
 * 2 added the lease and control tables: code of version 1 would ignore the lease and
 * deliver beside the holder, so it must not open a file that has one.
 */
const SCHEMA_VERSION = 2;

export interface OpenSqliteOptions {
  /** @default 5000 */
  busyTimeoutMs?: number;
  /** @default 'normal' */
  synchronous?: 'normal' | 'full';
  /** Make the queue tables (the delivery log's file has tables of its own). @default true */
  queueTables?: boolean;
}

/**
 * Opens (creating if need be) a store database in WAL mode with the queue tables (unless
 * `queueTables` is false), and turns any failure, such as a file that is not a database
 * or one whose pages fail `PRAGMA quick_check`, into a `StoreOpenError`.
 */
export function openSqliteDatabase(path: string, options: OpenSqliteOptions = {}): Database.Database {
  let db: Database.Database | undefined;
  try {
    const Sqlite = sqliteDriver();
    db = new Sqlite(path, { timeout: options.busyTimeoutMs ?? DEFAULTS.stores.sqliteBusyTimeoutMs });
    // The first statement is where SQLite reads the header and finds out what the file is.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${(options.synchronous ?? DEFAULTS.stores.sqliteSynchronous).toUpperCase()}`);
    checkOnce(db, path);
    if (options.queueTables === false) return db;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this library understands (${SCHEMA_VERSION})`);
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS queue_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS queue_events_by_queue ON queue_events (queue, seq);
      CREATE TABLE IF NOT EXISTS queue_quarantine (
        seq INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS queue_leases (
        queue TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS queue_control (
        queue TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT NOT NULL,
        since TEXT NOT NULL
      );
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError('sqlite', path, (err as Error).message, { cause: err });
  }
}

/** How to get going again with a damaged file; part of every message about one. */
function recovery(path: string): string {
  return `stop the registry and move ${path} (and its -wal and -shm files) aside to start with an empty queue, or salvage its rows with: sqlite3 ${path} .recover`;
}

// The open connections, by file, that ran quick_check on it: a second store on a file
// this process already checked (an endpoint's dead letters, another endpoint's queue)
// does not read the whole file again.
const checked = new Map<string, Set<Database.Database>>();

/**
 * Runs `PRAGMA quick_check` (every page and b-tree of the file, without cross-checking
 * indexes against tables) unless a connection of this process that ran it is still
 * open on the file. Anything but `ok` fails the open, quoting what SQLite found.
 */
function checkOnce(db: Database.Database, path: string): void {
  const key = fileIdentity(path);
  const open = [...(checked.get(key) ?? [])].filter((c) => c.open);
  if (open.length === 0) {
    let findings: string[];
    let cause: unknown;
    try {
      findings = (db.pragma('quick_check') as { quick_check: string }[]).flatMap((r) => r.quick_check.split('\n'));
    } catch (err) {
      // Damage in the pages that lead to the rest (the schema, a b-tree's root) stops
      // the check itself.
      if (!isCorruption(err)) throw err;
      findings = [(err as Error).message];
      cause = err;
    }
    findings = findings.filter((line) => line !== '' && !line.startsWith('*** in database'));
    if (findings.length !== 1 || findings[0] !== 'ok') {
      const shown = findings.slice(0, 3).join('; ') + (findings.length > 3 ? `; and ${findings.length - 3} more` : '');
      throw new StoreOpenError('sqlite', path, `PRAGMA quick_check found the file damaged (${shown}); ${recovery(path)}`, { cause });
    }
  }
  if (!key.startsWith(':memory:')) checked.set(key, new Set([...open, db]));
}

/** SQLite's codes for a file whose contents are not what SQLite wrote there. */
function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/**
 * The `StoreCorruptError` for a failed SQLite operation whose error says the file is
 * damaged; undefined for any other error (busy, disk full, ...).
 */
export function sqliteCorruption(description: string, path: string, operation: string, err: unknown): StoreCorruptError | undefined {
  if (!isCorruption(err)) return undefined;
  const { message, code } = err as Error & { code: string };
  return new StoreCorruptError(description, `${operation}: ${message} [${code}]; ${recovery(path)}`, { cause: err });
}

// Waiting takes by file and queue, so an append through any store in this process (or a
// lease given up by one) wakes the takers of that queue without their waiting for the poll.
const waiters = new Map<string, Set<() => void>>();

interface Row {
  seq: number;
  body: string;
}

interface LeaseRow {
  holder: string;
  expires_at: number;
}

interface ControlRow {
  state: string;
  reason: string;
  since: string;
}

/**
 * Pending events in a SQLite file: they survive the process being killed, and memory
 * stays flat however long the backlog, since `take` reads only the rows it returns.
 *
 * **One consumer per queue.** Any number of stores, in any number of processes, may append
 * to a queue, but only one at a time hands its events out: the holder of the queue's
 * lease, a row in the file's `queue_leases` table (holder, expiry). A store's first `take`
 * asks for the lease; the holder renews it every `leaseRenewMs` while the store is open and
 * gives it up on `close()`. Another store's `take` returns nothing (after waiting `waitMs`)
 * while the lease is held; once it is free, or expired because its holder was killed, that
 * store takes it over. A holder on this host whose process no longer exists (killed with
 * SIGKILL) is taken over at once rather than at its expiry. So in a rolling restart the
 * new process accepts events at once and starts delivering when the old one has closed
 * or died, in order and without the two delivering the same rows. `pending()` counts the
 * queue's rows whichever store will deliver them. Holders compare expiries with the
 * clock of the machine, so the processes sharing a file must share a clock (one host).
 *
 * **Damage.** Opening runs `PRAGMA quick_check` and refuses a damaged file. Damage found
 * later (SQLite reports `SQLITE_CORRUPT` or `SQLITE_NOTADB`) rejects the operation with a
 * `StoreCorruptError`, and from then on `take` and `append` reject with it too: the store
 * never hands out again events it could not acknowledge.
 */
export class SqliteStore implements QueueStore {
  readonly description: string;
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly queue: string;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly leaseRenewMs: number;
  /** Names this store in the lease table: host, process and a random part. */
  private readonly holder: string;
  private readonly onCorrupt?: (err: Error) => void;
  private readonly wakeKey: string;
  private readonly insert: Database.Statement<[string, string]>;
  private readonly select: Database.Statement<[string, number], Row>;
  private readonly remove: Database.Statement<[number, string]>;
  private readonly count: Database.Statement<[string], { n: number }>;
  private readonly appendAll: (events: readonly Event[]) => void;
  private readonly removeAll: (seqs: number[]) => void;
  private readonly claim: () => { until: number } | { other: LeaseRow };
  private readonly wakeups = new Set<() => void>();
  /** When the lease this store holds runs out (Date.now() time); 0 when it holds none. */
  private heldUntil = 0;
  /** When the lease another store holds runs out, as last seen. */
  private othersUntil = 0;
  private renewTimer?: NodeJS.Timeout;
  private corrupt?: StoreCorruptError;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    if (typeof options.queue !== 'string' || options.queue === '') {
      throw new TypeError(`sqlite store at ${options.path}: option "queue" must be a non-empty string`);
    }
    this.leaseMs = positiveMs(options, 'leaseMs', DEFAULTS.stores.sqliteLeaseMs);
    this.leaseRenewMs = positiveMs(options, 'leaseRenewMs', DEFAULTS.stores.sqliteLeaseRenewMs);
    if (this.leaseRenewMs >= this.leaseMs) {
      throw new RangeError(
        `sqlite store at ${options.path}: option "leaseRenewMs" (${this.leaseRenewMs}) must be less than "leaseMs" (${this.leaseMs}), so that the lease is renewed before it expires`,
      );
    }
    this.description = `sqlite:${options.path}`;
    this.path = options.path;
    this.queue = options.queue;
    this.pollMs = options.pollMs ?? DEFAULTS.stores.sqlitePollMs;
    this.onCorrupt = options.onCorrupt;
    this.holder = `${hostname()} pid ${process.pid} ${randomUUID().slice(0, 8)}`;
    this.db = openSqliteDatabase(options.path, options);
    this.wakeKey = `${fileIdentity(options.path)}\0${options.queue}`;
    this.insert = this.db.prepare('INSERT INTO queue_events (queue, body) VALUES (?, ?)');
    this.select = this.db.prepare('SELECT seq, body FROM queue_events WHERE queue = ? ORDER BY seq LIMIT ?');
    this.remove = this.db.prepare('DELETE FROM queue_events WHERE seq = ? AND queue = ?');
    this.count = this.db.prepare('SELECT count(*) AS n FROM queue_events WHERE queue = ?');
    this.appendAll = this.db.transaction((events: readonly Event[]) => {
      for (const event of events) this.insert.run(this.queue, storedEventJson(event));
    });
    this.removeAll = this.db.transaction((seqs: number[]) => {
      for (const seq of seqs) this.remove.run(seq, this.queue);
    });
    const readLease = this.db.prepare<[string], LeaseRow>('SELECT holder, expires_at FROM queue_leases WHERE queue = ?');
    const writeLease = this.db.prepare<[string, string, number]>(
      `INSERT INTO queue_leases (queue, holder, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (queue) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
    );
    // Takes or renews the lease unless another store holds it unexpired; returns that
    // store's lease then. IMMEDIATE: two stores that both find it free cannot both take it.
    const claim = this.db.transaction(() => {
      const now = Date.now();
      const lease = readLease.get(this.queue);
      if (lease && lease.holder !== this.holder && lease.expires_at > now && !holderIsGone(lease.holder)) return { other: lease };
      writeLease.run(this.queue, this.holder, now + this.leaseMs);
      return { until: now + this.leaseMs };
    });
    this.claim = () => claim.immediate();
  }

  /** Commits all the events in one transaction: when this resolves they are in the file. */
  async append(events: readonly Event[]): Promise<void> {
    this.assertUsable('append');
    if (events.length === 0) return;
    this.guard('appending events', () => this.appendAll(events));
    this.wakeTakers();
  }

  /**
   * The oldest events, when this store holds the queue's lease or can take it; otherwise
   * waits (up to `waitMs`) for the lease as for events, and returns nothing.
   */
  async take(max: number, signal: AbortSignal, waitMs = DEFAULTS.stores.takeWaitMs): Promise<StoredEvent[]> {
    this.assertUsable('take');
    const deadline = Date.now() + waitMs;
    for (;;) {
      const batch = this.guard('taking events', () => (this.holdLease() ? this.read(max) : []));
      if (batch.length > 0 || signal.aborted) return batch;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return batch;
      // Waiting for the lease: look again when it runs out, if that comes before the poll.
      const lease = this.heldUntil > 0 ? Infinity : Math.max(1, this.othersUntil - Date.now());
      await this.sleep(Math.min(remaining, this.pollMs, lease), signal);
      if (this.closed) return [];
      if (this.corrupt) throw this.corrupt;
    }
  }

  async ack(entries: readonly StoredEvent[]): Promise<void> {
    this.assertOpen('ack');
    if (entries.length > 0) this.guard('acknowledging events', () => this.removeAll(entries.map((e) => Number(e.key))));
  }

  async pending(): Promise<number> {
    this.assertOpen('count pending events');
    return this.guard('counting pending events', () => this.count.get(this.queue)!.n);
  }

  /** The endpoint's control as last saved for this queue (table `queue_control`). */
  async loadControl(): Promise<EndpointControl | undefined> {
    this.assertOpen('load the endpoint control');
    const row = this.guard('loading the endpoint control', () =>
      this.db.prepare<[string], ControlRow>('SELECT state, reason, since FROM queue_control WHERE queue = ?').get(this.queue),
    );
    if (!row) return undefined;
    if (row.state !== 'paused' && row.state !== 'gone') {
      throw new StoreCorruptError(this.description, `queue_control of queue ${this.queue} has state ${JSON.stringify(row.state)}, expected paused or gone`);
    }
    return { state: row.state, reason: row.reason, since: row.since };
  }

  /** Saves (or with undefined, clears) the control in one commit: it is in the file when this resolves. */
  async saveControl(control: EndpointControl | undefined): Promise<void> {
    this.assertOpen('save the endpoint control');
    if (control === undefined) {
      this.guard('clearing the endpoint control', () => this.db.prepare('DELETE FROM queue_control WHERE queue = ?').run(this.queue));
      return;
    }
    const where = `${this.description}: saveControl`;
    if (control === null || typeof control !== 'object') throw new TypeError(`${where}: expected an object or undefined, got ${String(control)}`);
    if (control.state !== 'paused' && control.state !== 'gone') {
      throw new TypeError(`${where}: state must be "paused" or "gone", got ${JSON.stringify(control.state)}`);
    }
    for (const field of ['reason', 'since'] as const) {
      if (typeof control[field] !== 'string') throw new TypeError(`${where}: ${field} must be a string, got ${typeof control[field]}`);
    }
    this.guard('saving the endpoint control', () =>
      this.db
        .prepare(
          `INSERT INTO queue_control (queue, state, reason, since) VALUES (?, ?, ?, ?)
           ON CONFLICT (queue) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since`,
        )
        .run(this.queue, control.state, control.reason, control.since),
    );
  }

  /**
   * Gives up the lease, if held, and closes the file; a `take` that is waiting returns
   * what it has (nothing). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    for (const wake of this.wakeups) wake();
    try {
      if (this.renewTimer) {
        this.db.prepare('DELETE FROM queue_leases WHERE queue = ? AND holder = ?').run(this.queue, this.holder);
      }
    } catch {
      // A lease that cannot be given up (a damaged or locked file) runs out on its own.
    } finally {
      this.heldUntil = 0;
      this.db.close();
    }
    this.wakeTakers();
  }

  /**
   * Whether this store holds the lease, taking it if it is free or expired. A lease with
   * a renewal's worth of time left is trusted without asking the file: no other store
   * takes it before it runs out.
   */
  private holdLease(): boolean {
    if (this.heldUntil - Date.now() > this.leaseMs - this.leaseRenewMs) return true;
    this.renewLease();
    return this.heldUntil > 0;
  }

  /** Takes or renews the lease; keeps renewing it while the store is open. */
  private renewLease(): void {
    const claimed = this.claim();
    if ('other' in claimed) {
      this.heldUntil = 0;
      this.othersUntil = claimed.other.expires_at;
      return;
    }
    this.heldUntil = claimed.until;
    // A damaged store delivers nothing, so it stops renewing and lets the lease run out.
    this.renewTimer ??= setInterval(() => {
      if (this.closed || this.heldUntil === 0 || this.corrupt) return;
      try {
        this.guard('renewing the lease', () => this.renewLease());
      } catch {
        // Not renewed: the next take tries again, and says what is wrong.
      }
    }, this.leaseRenewMs).unref();
  }

  private read(max: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const row of this.select.all(this.queue, max)) {
      try {
        out.push({ key: String(row.seq), event: decodeEvent(JSON.parse(row.body), `row ${row.seq}`) });
      } catch (err) {
        this.quarantine(row, err as Error);
      }
    }
    return out;
  }

  private quarantine(row: Row, err: Error): void {
    const reason = `${this.description}: queue ${this.queue}: ${err.message}; moved to queue_quarantine`;
    this.db.transaction(() => {
      this.db
        .prepare('INSERT OR REPLACE INTO queue_quarantine (seq, queue, body, reason) VALUES (?, ?, ?, ?)')
        .run(row.seq, this.queue, row.body, err.message);
      this.remove.run(row.seq, this.queue);
    })();
    this.onCorrupt?.(new Error(reason, { cause: err }));
  }

  /**
   * Runs one operation on the file. An error saying the file is damaged becomes a
   * `StoreCorruptError`, and the store remembers it: no more takes or appends.
   */
  private guard<T>(operation: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      const damaged = sqliteCorruption(this.description, this.path, operation, err);
      if (!damaged) throw err;
      this.corrupt ??= damaged;
      throw damaged;
    }
  }

  private wakeTakers(): void {
    for (const wake of waiters.get(this.wakeKey) ?? []) wake();
  }

  /** Resolves after `ms`, or sooner on an append to this queue, a lease given up, an abort, or close. */
  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeups.delete(done);
        const set = waiters.get(this.wakeKey);
        set?.delete(done);
        if (set?.size === 0) waiters.delete(this.wakeKey);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wakeups.add(done);
      let set = waiters.get(this.wakeKey);
      if (!set) waiters.set(this.wakeKey, (set = new Set()));
      set.add(done);
    });
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, operation);
  }

  /** Open, and not found damaged: what `take` and `append` need. */
  private assertUsable(operation: string): void {
    this.assertOpen(operation);
    if (this.corrupt) throw this.corrupt;
  }
}

/** Node's longest timer, about 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration option: a positive whole number of ms a timer can wait, or its default when not given. */
/**
 * Whether a lease's holder is a process of this host that no longer exists: its lease
 * need not run out before another takes it. A holder on another host (or one whose
 * name is not ours) is never judged gone; its lease expires.
 */
function holderIsGone(holder: string): boolean {
  const named = /^(.*) pid (\d+) [0-9a-f]{8}$/.exec(holder);
  if (!named || named[1] !== hostname() || Number(named[2]) === process.pid) return false;
  try {
    process.kill(Number(named[2]), 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function positiveMs(options: SqliteStoreOptions, name: 'leaseMs' | 'leaseRenewMs', fallback: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`sqlite store at ${options.path}: option "${name}" must be a positive whole number of milliseconds, got ${String(value)}`);
  }
  if (value > MAX_TIMER_MS) {
    throw new RangeError(`sqlite store at ${options.path}: option "${name}" must be at most ${MAX_TIMER_MS} ms (about 24 days), got ${value}`);
  }
  return value;
}

let privateFiles = 0;

/** The same file reached by different spellings gives the same key; `:memory:` is private to its store. */
function fileIdentity(path: string): string {
  if (path === ':memory:' || path === '') return `:memory:${++privateFiles}`;
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}
