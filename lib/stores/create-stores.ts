import type { QueueConfig } from '../config/normalize';
import type { QueueStore } from './queue-store';
import type { DeadLetterStore } from './dead-letter-store';
import { MemoryDeadLetterStore } from './memory-dead-letters';
import { RedisDeadLetterStore } from './redis-dead-letters';
import { SqliteDeadLetterStore } from './sqlite-dead-letters';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';
import { SqliteStore } from './sqlite-store';

/** An endpoint's pending events and the events it gave up on, kept in one kind of store. */
export interface EndpointStores {
  queue: QueueStore;
  deadLetters: DeadLetterStore;
}

/**
 * Makes the stores of one endpoint from `notifications.queue`. SQLite opens (and fails,
 * naming the file) here; Redis connects on first use or on `queue.open()`, which
 * `Notifications.ready()` calls, so a missing server is reported at start-up.
 * `onError` hears of entries set aside as corrupt and of lost connections after start-up.
 */
export function createEndpointStores(
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
