import { createHash } from 'node:crypto';
import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { LogConfig, QueueConfig } from '../config/normalize';
import type { QueueStore } from './queue-store';
import type { DeadLetterStore } from './dead-letter-store';
import { MemoryDeadLetterStore } from './memory-dead-letters';
import { RedisDeadLetterStore } from './redis-dead-letters';
import { SqliteDeadLetterStore } from './sqlite-dead-letters';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';
import { describeRedisAddress } from './redis-connections';
import { SqliteStore } from './sqlite-store';
import type { DeliveryLog } from './delivery-log';
import { MemoryDeliveryLog } from './memory-delivery-log';
import { logFileOf, SqliteDeliveryLog } from './sqlite-delivery-log';
import { RedisDeliveryLog } from './redis-delivery-log';
import { SpoolingStore, type SpoolHooks } from './spooling-store';

/** An endpoint's pending events and the events it gave up on, kept in one kind of store. */
export interface EndpointStores {
  queue: QueueStore;
  deadLetters: DeadLetterStore;
}

/**
 * Makes the stores of one endpoint from `notifications.queue`. SQLite opens (and fails,
 * naming the file) here; Redis connects on first use or on `queue.open()`, which
 * `Notifications.ready()` calls, so a missing server is reported at start-up.
 * `onError` hears of entries set aside as corrupt and of lost connections after start-up,
 * and of events spooled. A durable queue has a spool in front (`queue.spooldir`): events
 * it cannot take within `queue.committimeout` wait on disk until it can.
 */
export function createEndpointStores(
  config: QueueConfig,
  endpoint: string,
  instanceId: string,
  onError?: (err: Error) => void,
  spoolHooks?: SpoolHooks,
): EndpointStores {
  const stores = createBareStores(config, endpoint, instanceId, onError);
  if (config.type === 'memory') return stores;
  const file = spoolFileOf(config, endpoint);
  adoptUnnamedSpool(config, endpoint, file);
  return {
    ...stores,
    // SQLite answers at once (it writes synchronously): only its failures are spooled.
    queue: new SpoolingStore(stores.queue, {
      file,
      commitTimeoutMs: config.type === 'redis' ? config.commitTimeoutMs : Infinity,
      hooks: spoolHooks,
      onError,
    }),
  };
}

/**
 * The spool file of an endpoint's durable queue: named by the endpoint and by the store
 * it feeds (the SQLite file, or the Redis server and prefix), `hook-3f2a9c01d4e5.spool`,
 * so that registries sharing a working directory and an endpoint name never forward each
 * other's events into their own stores.
 */
export function spoolFileOf(config: QueueConfig, endpoint: string): string {
  const store = config.type === 'sqlite' ? `sqlite ${path.resolve(config.path!)}` : `redis ${describeRedisAddress(undefined, config.url!)} ${config.prefix}`;
  const tag = createHash('sha256').update(store).digest('hex').slice(0, 12);
  return path.resolve(config.spoolDir, `${encodeURIComponent(endpoint)}-${tag}.spool`);
}

/**
 * Earlier versions named a spool by the endpoint alone (`hook.spool`). One left by a
 * crash becomes this store's at the next start, as it would have been then, unless this
 * store already has a spool of its own; another process starting at the same time may
 * take it first.
 */
function adoptUnnamedSpool(config: QueueConfig, endpoint: string, file: string): void {
  const unnamed = path.resolve(config.spoolDir, `${encodeURIComponent(endpoint)}.spool`);
  if (!existsSync(unnamed) || existsSync(file)) return;
  try {
    renameSync(unnamed, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function createBareStores(
  config: QueueConfig,
  endpoint: string,
  instanceId: string,
  onError?: (err: Error) => void,
): EndpointStores {
  switch (config.type) {
    case 'memory':
      return { queue: new MemoryStore({ limit: config.limit }), deadLetters: new MemoryDeadLetterStore() };
    case 'sqlite':
      return {
        queue: new SqliteStore({ path: config.path!, queue: endpoint, onCorrupt: onError }),
        deadLetters: new SqliteDeadLetterStore({ path: config.path!, queue: endpoint }),
      };
    case 'redis':
      return {
        // The consumer is this process's instance id: a replica that restarts gets a new
        // one, and its old entries are reclaimed after the idle timeout. Every endpoint's
        // queue and dead letters share one connection to the URL (redis-connections.ts).
        queue: new RedisStore({
          url: config.url!,
          queue: endpoint,
          consumer: instanceId,
          prefix: config.prefix,
          claimIdleMs: config.claimIdleMs,
          onCorrupt: onError,
          onConnectionError: onError,
        }),
        deadLetters: new RedisDeadLetterStore({ url: config.url!, queue: endpoint, prefix: config.prefix }),
      };
  }
}

/**
 * Makes the delivery log (the console's attempt and event logs of every endpoint) in the
 * queue's store kind: the heap, a SQLite file beside the queue's (`logFileOf`; the log
 * tables an earlier version kept in the queue's file move into it), or the queue's Redis
 * (shared by every replica).
 */
export function createDeliveryLog(queue: QueueConfig, log: LogConfig): DeliveryLog {
  switch (queue.type) {
    case 'memory':
      return new MemoryDeliveryLog(log);
    case 'sqlite':
      return new SqliteDeliveryLog({ path: logFileOf(queue.path!), importFrom: queue.path!, ...log });
    case 'redis':
      return new RedisDeliveryLog({ url: queue.url!, prefix: queue.prefix, ...log });
  }
}
