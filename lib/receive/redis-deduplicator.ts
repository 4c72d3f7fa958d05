import type Redis from 'ioredis';
import { redisDriver } from '../stores/drivers';
import { DEFAULTS } from '../config/defaults';
import { ClosedDeduplicatorError, DeduplicatorOptionsError, positiveOption, type Deduplicator } from './deduplicator';

export interface RedisDeduplicatorOptions {
  /** A connected ioredis client, owned by the caller (not closed by `close()`). */
  client?: Redis;
  /** A Redis URL to connect to when no `client` is given; that connection is closed by `close()`. */
  url?: string;
  /**
   * Key prefix; each id is stored at `<prefix><id>`.
   * @default 'webhook:seen:'
   */
  prefix?: string;
  /**
   * How long an id is remembered, in milliseconds.
   * @default 600000 (10 minutes)
   */
  windowMs?: number;
}

/**
 * Ids in Redis (`SET key 1 NX PX window`): several receiver replicas behind one load
 * balancer then agree on which deliveries are duplicates.
 */
export class RedisDeduplicator implements Deduplicator {
  private readonly redis: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly windowMs: number;
  private closed = false;

  constructor(options: RedisDeduplicatorOptions) {
    if (!options.client && !options.url) {
      throw new DeduplicatorOptionsError('RedisDeduplicator needs a client or a url, got neither');
    }
    this.windowMs = Math.round(positiveOption('windowMs', options.windowMs ?? DEFAULTS.deduplicator.windowMs));
    this.prefix = options.prefix ?? DEFAULTS.deduplicator.prefix;
    this.ownsClient = !options.client;
    this.redis = options.client ?? new (redisDriver('RedisDeduplicator'))(options.url!, { lazyConnect: false, maxRetriesPerRequest: 2 });
  }

  async firstSeen(id: string): Promise<boolean> {
    if (this.closed) throw new ClosedDeduplicatorError();
    const reply = await this.redis.set(this.prefix + id, '1', 'PX', this.windowMs, 'NX');
    return reply === 'OK';
  }

  async forget(id: string): Promise<void> {
    if (this.closed) return;
    await this.redis.del(this.prefix + id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.redis.quit();
  }
}
