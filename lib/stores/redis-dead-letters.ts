import type Redis from 'ioredis';
import { redisDriver } from './drivers';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, encodeEvent } from '../codec/envelope';
import type { Event } from '../model/event';
import type { DeadLetter, DeadLetterStore } from './dead-letter-store';
import { StoreClosedError } from './queue-store';

export interface RedisDeadLetterStoreOptions {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. */
  url?: string;
  /** A client to use instead of `url`; it stays open on `close()`. */
  client?: Redis;
  /** Which endpoint the dead letters belong to: the stream is `<prefix>:dead:<queue>`. */
  queue: string;
  /** Prefix of every key, as the queue's RedisStore. @default 'regnotify' */
  prefix?: string;
}

/** Dead letters in a Redis stream, shared by every replica, kept until replayed. */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly description: string;
  private readonly key: string;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private closed = false;

  constructor(options: RedisDeadLetterStoreOptions) {
    this.key = `${options.prefix ?? DEFAULTS.queue.prefix}:dead:${options.queue}`;
    this.ownsClient = !options.client;
    this.client = options.client ?? new (redisDriver('the redis dead-letter store'))(options.url!, { lazyConnect: true, maxRetriesPerRequest: 2 });
    if (this.ownsClient) this.client.on('error', () => undefined); // surfaced by the failing command
    this.description = `redis dead letters ${this.key}`;
  }

  async add(events: readonly Event[], reason: string): Promise<void> {
    this.assertOpen('add');
    const failedAt = new Date().toISOString();
    const batch = this.client.pipeline();
    for (const e of events) batch.xadd(this.key, '*', 'id', e.id, 'event', encodeEvent(e, { indent: false, withKind: true }), 'reason', reason, 'failedAt', failedAt);
    // A pipeline resolves with an error per command rather than rejecting: a write that
    // failed must fail the add, or the queue would acknowledge events kept nowhere.
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed || results.length !== events.length) {
      throw new Error(`${this.description}: dead letters not written: ${failed?.[0]?.message ?? 'the pipeline was discarded'}`);
    }
  }

  async list(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    this.assertOpen('list');
    const entries = await this.client.xrange(this.key, '-', '+', 'COUNT', options.limit ?? DEFAULTS.stores.deadLetterListLimit);
    return entries.map(([, fields]) => this.letter(fields));
  }

  async replay(ids?: readonly string[]): Promise<Event[]> {
    this.assertOpen('replay');
    const wanted = ids ? new Set(ids) : undefined;
    const entries = (await this.client.xrange(this.key, '-', '+')).filter(([, f]) => !wanted || wanted.has(field(f, 'id')));
    if (entries.length === 0) return [];
    await this.client.xdel(this.key, ...entries.map(([streamId]) => streamId));
    return entries.map(([, fields]) => this.letter(fields).event);
  }

  async count(): Promise<number> {
    this.assertOpen('count');
    return this.client.xlen(this.key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client.disconnect();
  }

  private letter(fields: string[]): DeadLetter {
    return {
      event: decodeEvent(JSON.parse(field(fields, 'event')), `${this.description}: dead letter`),
      reason: field(fields, 'reason'),
      failedAt: field(fields, 'failedAt'),
    };
  }

  private assertOpen(operation: string): void {
    if (this.closed) throw new StoreClosedError(this.description, operation);
  }
}

/** A field of a stream entry, given as [name, value, name, value, …]. */
function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? fields[i + 1] : '';
}
