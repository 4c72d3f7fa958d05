import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { DEFAULTS } from '../config/defaults';
import { redisDriver } from './drivers';

/**
 * One connection to Redis as the stores use it: `open()` connects, checks the server
 * answers PING in time and selects the URL's database, and resolves with the client.
 *
 * Until it has opened once, a connection does not retry in the background: an open that
 * fails rejects with the reason (the socket's error, or no answer in time) and drops that
 * client; an `open()` from `DEFAULTS.stores.redisReopenMs` (1s) later on tries again with
 * a new one. So a store whose server is down at start-up, or reached through an address
 * that is fixed later, recovers on its next use. Once open, ioredis reconnects by itself
 * after a lost connection.
 */
export class RedisConnection {
  private current?: Redis;
  private opening?: Promise<Redis>;
  private lastError?: Error;
  /** The last failed attempt, when the connection has not opened since. */
  private failure?: { at: number; err: unknown };
  /** Whether an open() has succeeded: from then on ioredis keeps the client connected. */
  private opened = false;
  private closed = false;
  private readonly errorListeners = new Set<(err: Error) => void>();
  /** The server's id of this connection (CLIENT ID), kept up to date across reconnects. */
  id?: number;

  /**
   * @param create makes a client with the options given (lazy, and with no retries before
   *   the first success); called again for each new attempt after a failure.
   * @param owned whether `close()` disconnects it: false for a client the caller gave us.
   */
  constructor(
    private readonly create: (options: RedisOptions) => Redis,
    private readonly owned = true,
  ) {}

  /** A connection to `url`, named `name` in CLIENT LIST. */
  static fromUrl(url: string, name: string, neededBy: string): RedisConnection {
    return new RedisConnection((options) => new (redisDriver(neededBy))(url, { ...options, connectionName: name }));
  }

  /** The caller's own client, used as it is and left open on `close()`. */
  static borrow(client: Redis): RedisConnection {
    return new RedisConnection(() => client, false);
  }

  /** The client of the last successful `open()`; throws before there was one. */
  get client(): Redis {
    if (!this.current || !this.opened) throw new Error('redis connection used before open()');
    return this.current;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Connects (once; later calls share the result), checks PING answers within
   * `timeoutMs` and selects the database. Rejects with the socket's error when there is
   * one, so the message says why (`connect ECONNREFUSED 127.0.0.1:6390`).
   */
  open(timeoutMs: number): Promise<Redis> {
    if (this.closed) return Promise.reject(new Error('the redis connection is closed'));
    // Right after a failure, fail the same way: every endpoint and request retrying at
    // once would otherwise open a socket each.
    if (this.failure && Date.now() - this.failure.at < DEFAULTS.stores.redisReopenMs) return Promise.reject(this.failure.err);
    this.opening ??= this.attempt(timeoutMs).then(
      (client) => {
        this.failure = undefined;
        this.opened = true;
        return client;
      },
      (err: unknown) => {
        this.failure = { at: Date.now(), err };
        this.opening = undefined; // the next open() tries again, with a new client
        throw err;
      },
    );
    return this.opening;
  }

  /** Hears connection errors after the first successful open; returns a function that stops it. */
  onError(listener: (err: Error) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** QUIT when connected (disconnect otherwise); a borrowed client stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.current;
    if (!this.owned || !client) return;
    // QUIT would first connect a client that never has; there is nothing to say goodbye to.
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }

  /** Drops the connection at once: a blocked command on it rejects. */
  disconnect(): void {
    this.closed = true;
    if (this.owned) this.current?.disconnect();
  }

  private async attempt(timeoutMs: number): Promise<Redis> {
    // A borrowed client is the caller's: used as it is, whatever its state.
    const client = this.owned ? this.newClient() : (this.current ?? this.create({}));
    this.current = client;
    this.lastError = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to PING within ${timeoutMs}ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.connectAndPing(client), timeout]);
    } catch (err) {
      // A connection still trying (a hung server) is closed; one that failed has ended.
      if (this.owned && client.status !== 'end') client.disconnect();
      // ioredis rejects with "Connection is closed."; the socket error says why.
      throw this.lastError ?? err;
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) {
      if (this.owned) client.disconnect();
      throw new Error('the redis connection is closed');
    }
    return client;
  }

  private newClient(): Redis {
    let connected = false;
    const client = this.create({
      lazyConnect: true,
      // No reconnecting before the first success: open() reports the failure and the next
      // open() makes a new client.
      retryStrategy: (times) => (connected ? Math.min(times * 50, 2000) : null),
      // ioredis otherwise waits 2s for a hung server to close a socket we have given up on.
      disconnectTimeout: 200,
    });
    // Without a listener ioredis prints every reconnect failure to the console.
    client.on('error', (err: Error) => {
      if (client !== this.current) return;
      this.lastError ??= err;
      if (connected && !this.closed) for (const listener of this.errorListeners) listener(err);
    });
    client.on('ready', () => {
      connected = true;
      // A reconnected connection has a new id.
      client.client('ID').then(
        (id) => client === this.current && (this.id = Number(id)),
        () => undefined,
      );
    });
    return client;
  }

  private async connectAndPing(client: Redis): Promise<void> {
    if (client.status === 'wait') await client.connect();
    await client.ping();
    // ioredis reports a database it could not select only as an error event and goes on
    // in database 0: select it here, so a wrong one fails the open instead.
    const db = Number(client.options.db ?? 0);
    if (db !== 0) {
      await client.select(db).catch((err: Error) => {
        this.lastError = new Error(`database ${db} cannot be selected on this server: ${err.message}`);
        throw this.lastError;
      });
    }
    this.id = Number(await client.client('ID'));
  }
}

/** A use of a shared connection; `release()` once done with it. */
export interface RedisLease {
  readonly connection: RedisConnection;
  /** Ends this use; the connection closes when its last use ends. Harmless twice. */
  release(): Promise<void>;
}

interface Shared {
  connection: RedisConnection;
  users: number;
}

/** Open shared connections, by name and URL. */
const shared = new Map<string, Shared>();

/**
 * The one non-blocking connection for `url` named `name`, shared by every store that asks
 * for it (all endpoints' queues and dead letters): counted, and closed when the last of
 * them releases it. Blocking reads must not use it: they hold a connection while they wait.
 */
export function shareRedisConnection(url: string, name: string, neededBy: string): RedisLease {
  const key = `${name}\n${url}`;
  let entry = shared.get(key);
  if (!entry || entry.connection.isClosed) {
    entry = { connection: RedisConnection.fromUrl(url, name, neededBy), users: 0 };
    shared.set(key, entry);
  }
  const use = entry;
  use.users++;
  let released = false;
  return {
    connection: use.connection,
    async release() {
      if (released) return;
      released = true;
      if (--use.users > 0) return;
      if (shared.get(key) === use) shared.delete(key);
      await use.connection.close();
    },
  };
}

/**
 * A name for CLIENT LIST (CLIENT SETNAME refuses spaces and control characters): the
 * parts joined by `:`, anything else replaced by `_`.
 */
export function connectionName(...parts: string[]): string {
  return parts.join(':').replace(/[^\x21-\x7e]/g, '_');
}

/** `redis://host:port` (with `/db` when not 0), never the password. */
export function describeRedisAddress(client: Redis | undefined, url?: string): string {
  if (url) {
    try {
      const u = new URL(url);
      return `${u.protocol}//${u.host}${u.pathname && u.pathname !== '/' && u.pathname !== '/0' ? u.pathname : ''}`;
    } catch {
      // ioredis also accepts forms URL does not (`host:port`): show it without credentials.
      return url.replace(/^([a-z+]*:\/\/)?[^@/]*@/i, '$1');
    }
  }
  const { host, port, db, path } = client!.options;
  if (path) return `redis+unix://${path}`;
  return `redis://${host ?? '127.0.0.1'}:${port ?? 6379}${db ? `/${db}` : ''}`;
}
