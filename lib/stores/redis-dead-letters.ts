import type Redis from 'ioredis';
import { connectionName, describeRedisAddress, RedisConnection, shareRedisConnection, type RedisLease } from './redis-connections';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import type { DeadLetter, DeadLetterStore } from './dead-letter-store';
import { StoreClosedError, StoreOpenError } from './queue-store';

export interface RedisDeadLetterStoreOptions {
  /**
   * Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. The connection
   * is the one the queues of this URL share (see `RedisStoreOptions.url`).
   */
  url?: string;
  /** A client to use instead of `url`; it stays open on `close()`. */
  client?: Redis;
  /** Which endpoint the dead letters belong to: the stream is `<prefix>:dead:<queue>`. */
  queue: string;
  /** Prefix of every key, as the queue's RedisStore. @default 'regnotify' */
  prefix?: string;
  /** The shared connection's name in CLIENT LIST, as the queue's RedisStore. @default the prefix */
  connectionName?: string;
  /** How long a first connection waits for Redis to answer PING, in ms. @default 2000 (2s) */
  connectTimeoutMs?: number;
}

/** Dead letters in a Redis stream, shared by every replica, kept until replayed. */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly description: string;
  private readonly key: string;
  /** Where Redis is, for messages: `redis://host:port`. */
  private readonly address: string;
  private readonly connection: RedisConnection;
  /** The shared connection's lease; none for a client given in the options. */
  private readonly lease?: RedisLease;
  private readonly connectTimeoutMs: number;
  private closed = false;

  constructor(options: RedisDeadLetterStoreOptions) {
    if (!options.url === !options.client) {
      throw new TypeError('redis dead-letter store: give exactly one of the options "url" and "client"');
    }
    const prefix = options.prefix ?? DEFAULTS.queue.prefix;
    this.key = `${prefix}:dead:${options.queue}`;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.stores.redisConnectTimeoutMs;
    this.address = describeRedisAddress(options.client, options.url);
    if (options.client) {
      this.connection = RedisConnection.borrow(options.client);
    } else {
      // Errors of the shared connection reach the queue's store; here the failing command says why.
      this.lease = shareRedisConnection(options.url!, connectionName(options.connectionName ?? prefix), 'the redis dead-letter store');
      this.connection = this.lease.connection;
    }
    this.description = `redis dead letters ${this.key}`;
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    const client = await this.ready('add');
    const failedAt = new Date().toISOString();
    const batch = client.pipeline();
    for (const e of events) batch.xadd(this.key, '*', 'id', e.id, 'event', storedEventJson(e), 'reason', reason, 'failedAt', failedAt);
    // A pipeline resolves with an error per command rather than rejecting: a write that
    // failed must fail the add, or the queue would acknowledge events kept nowhere.
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed || results.length !== events.length) {
      throw new Error(`${this.description}: dead letters not written: ${failed?.[0]?.message ?? 'the pipeline was discarded'}`);
    }
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const client = await this.ready('list');
    const entries = await client.xrange(this.key, '-', '+', 'COUNT', options.limit ?? DEFAULTS.stores.deadLetterListLimit);
    return entries.map(([, fields]) => this.letter(fields));
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    const client = await this.ready('replay');
    const wanted = ids ? new Set(ids) : undefined;
    const entries = (await client.xrange(this.key, '-', '+')).filter(([, f]) => !wanted || wanted.has(field(f, 'id')));
    if (entries.length === 0) return [];
    await client.xdel(this.key, ...entries.map(([streamId]) => streamId));
    return entries.map(([, fields]) => this.letter(fields).event);
  }

  async count(): Promise<number> {
    const client = await this.ready('count');
    return client.xlen(this.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lease?.release();
  }

  private letter(fields: string[]): DeadLetter {
    return {
      event: decodeEvent(JSON.parse(field(fields, 'event')), `${this.description}: dead letter`),
      reason: field(fields, 'reason'),
      failedAt: field(fields, 'failedAt'),
    };
  }

  /** The connected client; connects first (again, after a failure) when needed. */
  private async ready(operation: string): Promise<Redis> {
    if (this.closed) throw new StoreClosedError(this.description, operation);
    try {
      return await this.connection.open(this.connectTimeoutMs);
    } catch (err) {
      if (this.closed) throw new StoreClosedError(this.description, operation);
      const cause = err as Error;
      throw new StoreOpenError('redis', `${this.address} (${this.key})`, cause.message, { cause });
    }
  }
}

/** A field of a stream entry, given as [name, value, name, value, …]. */
function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] : '';
}
