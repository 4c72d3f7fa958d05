import { hostname } from 'node:os';
import type Redis from 'ioredis';
import { DEFAULTS } from '../config/defaults';
import { redisDriver } from './drivers';
import { decodeEvent, encodeEvent } from '../codec/envelope';
import type { Event } from '../model/event';
import { StoreClosedError, StoreOpenError, type QueueStore, type StoredEvent } from './queue-store';

export interface RedisStoreOptions {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. */
  url?: string;
  /**
   * A client to use instead of `url`. The store duplicates it for its blocking reads and
   * leaves the client itself open on `close()`: it belongs to the caller.
   */
  client?: Redis;
  /** Which endpoint's queue: the stream is `<prefix>:queue:<queue>`. */
  queue: string;
  /**
   * This replica's consumer name in the group. Keep it stable across restarts (an instance
   * id saved on disk, a pod name) so a restarted replica resumes its own unacknowledged
   * entries at once instead of after `claimIdleMs`.
   * @default `${os.hostname()}-${process.pid}`
   */
  consumer?: string;
  /** Prefix of every key the store writes. @default 'regnotify' */
  prefix?: string;
  /**
   * How long, in ms, the entries a consumer took stay with it once it stops touching them;
   * then another consumer takes them over. A live consumer touches what it holds every
   * third of this, so a slow delivery (an endpoint down for hours) keeps its entries.
   * @default 60000 (1 min)
   */
  claimIdleMs?: number;
  /** How long `open()` waits for Redis to answer PING, in ms. @default 2000 (2s) */
  connectTimeoutMs?: number;
  /**
   * Called when an entry cannot be decoded as an event. The entry is copied to
   * `<prefix>:corrupt:<queue>` and removed from the queue, so it cannot stall it.
   */
  onCorrupt?(err: Error): void;
  /** Called with connection errors after `open()`; the client keeps reconnecting. */
  onConnectionError?(err: Error): void;
}

type StreamEntry = [id: string, fields: string[] | null];

/**
 * Pending events in a Redis stream shared by every registry replica: one stream per
 * endpoint, one consumer group on it, each replica a consumer. Entries a replica took and
 * never acknowledged (it died) are taken over by another after `claimIdleMs`.
 *
 * Use `await RedisStore.connect(options)` to find out at start-up whether Redis is there;
 * a store made with `new` connects on first use.
 */
export class RedisStore implements QueueStore {
  readonly description: string;
  /** The stream key. */
  readonly key: string;
  readonly consumer: string;
  private readonly group = DEFAULTS.stores.redisGroup;
  private readonly corruptKey: string;
  private readonly claimIdleMs: number;
  private readonly connectTimeoutMs: number;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly blocking: Redis;
  private readonly options: RedisStoreOptions;
  private opened?: Promise<void>;
  private blockingId?: number;
  private lastError?: Error;
  private connected = false;
  private takeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Entries handed out by take and not yet acknowledged: kept claimed while we live. */
  private readonly held = new Set<string>();
  private heartbeat?: NodeJS.Timeout;

  /** Opens and verifies a store: rejects with `StoreOpenError` if Redis does not answer. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options);
    await store.open();
    return store;
  }

  constructor(options: RedisStoreOptions) {
    if (typeof options.queue !== 'string' || options.queue === '') {
      throw new TypeError('redis store: option "queue" must be a non-empty string');
    }
    if (!options.url === !options.client) {
      throw new TypeError('redis store: give exactly one of the options "url" and "client"');
    }
    this.options = options;
    const prefix = options.prefix ?? DEFAULTS.queue.prefix;
    this.key = `${prefix}:queue:${options.queue}`;
    this.corruptKey = `${prefix}:corrupt:${options.queue}`;
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}`;
    this.claimIdleMs = options.claimIdleMs ?? DEFAULTS.queue.claimIdleMs;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.stores.redisConnectTimeoutMs;
    this.ownsClient = !options.client;
    // No reconnecting until open() has succeeded once: a server that is not there at
    // start-up is reported, not retried in the background.
    const retryStrategy = (times: number) => (this.connected ? Math.min(times * 50, 2000) : null);
    // ioredis otherwise waits 2s for a hung server to close a socket we have given up on.
    const disconnectTimeout = 200;
    this.client = options.client ?? new (redisDriver('the redis store'))(options.url!, { lazyConnect: true, retryStrategy, disconnectTimeout });
    this.description = describeAddress(this.client, options.url);
    this.blocking = this.client.duplicate({ lazyConnect: true, retryStrategy, disconnectTimeout });
    for (const c of this.ownsClient ? [this.client, this.blocking] : [this.blocking]) {
      // Without a listener ioredis prints every reconnect failure to the console.
      c.on('error', (err: Error) => {
        this.lastError = err;
        if (this.connected && !this.closed) this.options.onConnectionError?.(err);
      });
    }
    // A reconnected blocking connection has a new id, needed to interrupt its reads.
    this.blocking.on('ready', () => {
      this.blocking.client('ID').then(
        (id) => (this.blockingId = Number(id)),
        () => undefined,
      );
    });
  }

  /**
   * Connects both connections, checks Redis answers PING within `connectTimeoutMs` and
   * creates the consumer group. Rejects with `StoreOpenError` naming the address.
   * Called by every operation; calling it again returns the same promise.
   */
  open(): Promise<void> {
    this.opened ??= this.verify();
    return this.opened;
  }

  private async verify(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer to PING within ${this.connectTimeoutMs}ms`)),
        this.connectTimeoutMs,
      );
    });
    try {
      await Promise.race([this.connectAndPing(), timeout]);
      this.connected = true;
      // A replica that is alive but slow (its endpoint down, a long retry) touches the
      // entries it holds, so that others take them over only from a replica that died.
      this.heartbeat = setInterval(() => void this.touchHeld(), Math.max(50, Math.floor(this.claimIdleMs / 3)));
      this.heartbeat.unref();
    } catch (err) {
      // A connection still trying (a hung server) is closed; one that failed has ended.
      for (const c of this.ownsClient ? [this.client, this.blocking] : [this.blocking]) {
        if (c.status !== 'end') c.disconnect();
      }
      // ioredis rejects with "Connection is closed."; the socket error says why.
      const cause = this.lastError ?? (err as Error);
      throw new StoreOpenError('redis', this.description, cause.message, { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  private async connectAndPing(): Promise<void> {
    for (const c of [this.client, this.blocking]) {
      if (c.status === 'wait') await c.connect();
    }
    await this.client.ping();
    // ioredis reports a database it could not select only as an error event and goes on
    // in database 0: select it here, so a wrong one fails start-up instead.
    const db = Number(this.client.options.db ?? 0);
    if (db !== 0) {
      for (const c of [this.client, this.blocking]) {
        await c.select(db).catch((err: Error) => {
          this.lastError = new Error(`database ${db} cannot be selected on this server: ${err.message}`);
          throw this.lastError;
        });
      }
    }
    this.blockingId = Number(await this.blocking.client('ID'));
    await this.ensureGroup();
  }

  private async ensureGroup(): Promise<void> {
    try {
      // Start at 0 so events appended before the group existed are delivered too.
      await this.client.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
  }

  /** Adds the events to the stream (one pipeline); when this resolves Redis has them. */
  async append(events: readonly Event[]): Promise<void> {
    await this.ready('append');
    if (events.length === 0) return;
    const pipeline = this.client.pipeline();
    for (const event of events) pipeline.xadd(this.key, '*', 'event', encodeEvent(event, { indent: false, withKind: true }));
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw new Error(`${this.description}: appending to ${this.key} failed: ${failed[0]!.message}`);
  }

  /**
   * Returns, oldest first: entries taken over from consumers idle for `claimIdleMs`, then
   * this consumer's own unacknowledged entries, then new ones. One take runs at a time.
   */
  take(max: number, signal: AbortSignal, waitMs = DEFAULTS.stores.takeWaitMs): Promise<StoredEvent[]> {
    const run = this.takeChain.then(() => this.takeNow(max, signal, waitMs));
    this.takeChain = run.catch(() => undefined);
    return run;
  }

  private async takeNow(max: number, signal: AbortSignal, waitMs: number): Promise<StoredEvent[]> {
    const taken = await this.takeEntries(max, signal, waitMs);
    for (const entry of taken) this.held.add(entry.key);
    return taken;
  }

  private async takeEntries(max: number, signal: AbortSignal, waitMs: number): Promise<StoredEvent[]> {
    await this.ready('take');
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.reclaim(max);
      const own = await this.read(this.client, max, '0');
      if (own.length > 0) return own;
      const remaining = deadline - Date.now();
      if (signal.aborted || this.closed) return [];
      if (remaining <= 0) return this.read(this.client, max, '>');
      // Block no longer than claimIdleMs, so entries of a dead consumer are picked up
      // while we wait rather than only on the next take.
      const fresh = await this.blockingRead(max, Math.max(1, Math.min(remaining, this.claimIdleMs)), signal);
      if (fresh.length > 0 || signal.aborted || this.closed) return fresh;
    }
  }

  async ack(entries: readonly StoredEvent[]): Promise<void> {
    await this.ready('ack');
    if (entries.length === 0) return;
    const ids = entries.map((e) => e.key);
    // XDEL too, so the stream holds only what is not yet acknowledged.
    await this.client.multi().xack(this.key, this.group, ...ids).xdel(this.key, ...ids).exec();
    for (const id of ids) this.held.delete(id);
  }

  /** Resets the idle time of the entries this consumer holds (XCLAIM to itself). */
  private async touchHeld(): Promise<void> {
    if (this.closed || this.held.size === 0) return;
    try {
      await this.client.xclaim(this.key, this.group, this.consumer, 0, ...this.held, 'JUSTID');
    } catch (err) {
      if (!this.closed) this.options.onConnectionError?.(err as Error);
    }
  }

  /** The stream's length: events not yet acknowledged by any consumer. */
  async pending(): Promise<number> {
    await this.ready('count pending events');
    return this.client.xlen(this.key);
  }

  /** Interrupts a waiting take and disconnects; a client given in the options stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    // Disconnecting rejects a blocked XREADGROUP at once; takeNow turns that into [].
    this.blocking.disconnect();
    await this.takeChain;
    if (!this.ownsClient) return;
    // QUIT would first connect a client that never has; there is nothing to say goodbye to.
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  private async ready(operation: string): Promise<void> {
    if (this.closed) throw new StoreClosedError(this.description, operation);
    await this.open();
  }

  private async reclaim(max: number): Promise<void> {
    // Claimed entries join this consumer's pending list, which read(…, '0') returns next.
    await this.withGroup(() =>
      this.client.call('XAUTOCLAIM', this.key, this.group, this.consumer, this.claimIdleMs, '0-0', 'COUNT', max),
    );
  }

  private async read(conn: Redis, max: number, from: string, blockMs?: number): Promise<StoredEvent[]> {
    const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', max];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.key, from);
    const reply = (await this.withGroup(() => conn.call('XREADGROUP', ...args))) as [string, StreamEntry[]][] | null;
    return this.decode(reply?.[0]?.[1] ?? []);
  }

  private async blockingRead(max: number, blockMs: number, signal: AbortSignal): Promise<StoredEvent[]> {
    // CLIENT UNBLOCK makes the blocked read return as if it had timed out, keeping the connection.
    // It is repeated because an abort can come before the read has reached the server.
    let retry: NodeJS.Timeout | undefined;
    const interrupt = () => {
      if (this.blockingId !== undefined && !this.closed) {
        this.client.client('UNBLOCK', this.blockingId).catch(() => undefined);
      }
      retry = setTimeout(interrupt, 50);
    };
    signal.addEventListener('abort', interrupt, { once: true });
    try {
      return await this.read(this.blocking, max, '>', blockMs);
    } catch (err) {
      if (this.closed) return [];
      throw err;
    } finally {
      signal.removeEventListener('abort', interrupt);
      clearTimeout(retry);
    }
  }

  /** Runs a group command, recreating the group once if the stream was deleted under us. */
  private async withGroup<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOGROUP')) throw err;
      await this.ensureGroup();
      return command();
    }
  }

  private async decode(entries: StreamEntry[]): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (const [id, fields] of entries) {
      // An entry deleted while still pending comes back without fields; it is done with.
      if (!fields) {
        await this.client.xack(this.key, this.group, id);
        continue;
      }
      const body = fieldValue(fields, 'event');
      try {
        if (body === undefined) throw new Error('entry has no "event" field');
        out.push({ key: id, event: decodeEvent(JSON.parse(body), `entry ${id}`) });
      } catch (err) {
        await this.quarantine(id, fields, err as Error);
      }
    }
    return out;
  }

  private async quarantine(id: string, fields: string[], err: Error): Promise<void> {
    await this.client
      .multi()
      .xadd(this.corruptKey, '*', 'id', id, 'reason', err.message, ...fields)
      .xack(this.key, this.group, id)
      .xdel(this.key, id)
      .exec();
    this.options.onCorrupt?.(
      new Error(`${this.description}: ${this.key}: ${err.message}; moved to ${this.corruptKey}`, { cause: err }),
    );
  }
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** `redis://host:port` (with `/db` when not 0), never the password. */
function describeAddress(client: Redis, url?: string): string {
  if (url) {
    try {
      const u = new URL(url);
      return `${u.protocol}//${u.host}${u.pathname && u.pathname !== '/' && u.pathname !== '/0' ? u.pathname : ''}`;
    } catch {
      // ioredis also accepts forms URL does not; fall through to the parsed options.
    }
  }
  const { host, port, db, path } = client.options;
  if (path) return `redis+unix://${path}`;
  return `redis://${host ?? '127.0.0.1'}:${port ?? 6379}${db ? `/${db}` : ''}`;
}
