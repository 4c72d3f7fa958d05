import type Redis from 'ioredis';
import { redisDriver } from '../stores/drivers';
import { DEFAULTS } from '../config/defaults';
import { ClosedDeduplicatorError, DeduplicatorOptionsError, positiveOption, type Deduplicator, type Sighting } from './deduplicator';

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
  /**
   * How long an id stays claimed while its handler runs; past it, a receiver that died
   * mid-handling no longer holds the event back from another replica.
   * @default 60000 (1 minute)
   */
  claimMs?: number;
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
  private readonly claimMs: number;
  private closed = false;

  constructor(options: RedisDeduplicatorOptions) {
    if (!options.client && !options.url) {
      throw new DeduplicatorOptionsError('RedisDeduplicator needs a client or a url, got neither');
    }
    this.windowMs = Math.round(positiveOption('windowMs', options.windowMs ?? DEFAULTS.deduplicator.windowMs));
    this.prefix = options.prefix ?? DEFAULTS.deduplicator.prefix;
    this.claimMs = Math.round(positiveOption('claimMs', options.claimMs ?? DEFAULTS.deduplicator.claimMs));
    this.ownsClient = !options.client;
    this.redis = options.client ?? new (redisDriver('RedisDeduplicator'))(options.url!, { lazyConnect: false, maxRetriesPerRequest: 2 });
  }

  async claim(id: string): Promise<Sighting> {
    if (this.closed) throw new ClosedDeduplicatorError();
    const key = this.prefix + id;
    // A claim lives only `claimMs`: a receiver that dies mid-handling frees its events.
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await this.redis.set(key, 'handling', 'PX', this.claimMs, 'NX')) === 'OK') return 'new';
      const state = await this.redis.get(key);
      if (state !== null) return state === 'handling' ? 'handling' : 'done';
    }
    return 'handling';
  }

  async complete(id: string): Promise<void> {
    if (this.closed) return;
    await this.redis.set(this.prefix + id, 'done', 'PX', this.windowMs);
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
