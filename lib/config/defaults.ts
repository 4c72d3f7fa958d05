import type { PayloadFormat } from '../codec/payload';
import type { EnvelopeVersion } from '../model/event';

/**
 * Every default of the library, in one place. The normaliser (`config/normalize.ts`)
 * fills them into what the YAML loader, code options and `new Endpoint(...)` pass; the
 * classes that take options of their own read theirs from here. A test checks that the
 * README's option tables say the same.
 */
export const DEFAULTS = deepFreeze({
  /** The `notifications:` section. */
  notifications: {
    /** `events.includereferences`. */
    includeReferences: false,
  },
  /** `notifications.endpoints[]`: Distribution's fields and ours. */
  endpoint: {
    disabled: false,
    timeoutMs: 1000, // 1s, as Distribution
    threshold: 10, // as Distribution
    backoffMs: 1000, // 1s, as Distribution
    /** Undefined: the ceiling is `backoffMs`, which is Distribution's fixed wait. */
    maxBackoffMs: undefined as number | undefined,
    jitter: 0,
    maxRetries: -1, // forever, as Distribution
    /**
     * Most events per POST. An idle endpoint still gets one event per POST, byte for byte
     * Distribution's; events that piled up behind a request in flight go together, up to
     * this many. `1` for the single-event formats `cloudevents` and `cloudevents-binary`.
     */
    maxEvents: 250,
    /** Most bytes of body per POST (well under the 1 MiB receivers commonly accept); one larger event goes alone. 0: no limit. */
    maxBytes: 256 * 1024, // 256 KiB
    /**
     * While events keep coming, a request that is not full waits until this long after
     * the previous request started; an event after a quiet spell goes out at once.
     */
    lingerMs: 10, // 10ms
    envelope: 'v1' as EnvelopeVersion,
    format: 'distribution' as PayloadFormat,
    /** GitLab's `queuesizelimit`. Undefined: the endpoint follows `queue.limit`. */
    queueSizeLimit: undefined as number | undefined,
    /** GitLab's `queuepurgetimeout`. Undefined: the endpoint follows `queue.draintimeout`. */
    queuePurgeTimeoutMs: undefined as number | undefined,
  },
  /** `notifications.queue`. */
  queue: {
    type: 'memory' as 'memory' | 'sqlite' | 'redis',
    limit: 0, // no limit
    drainTimeoutMs: 2000, // 2s
    prefix: 'regnotify',
    claimIdleMs: 60_000, // 1m
    commitTimeoutMs: 250, // 250ms
    /** Where events a durable store cannot take in time wait on disk (a file per endpoint); relative to the working directory. */
    spoolDir: 'notifications-spool',
    /** What a success response does when its events cannot be stored in time: `spool` them, or `fail` (503). */
    onStoreError: 'spool' as 'spool' | 'fail',
    /** Most events a Queue reads from its store at once (at least twice `maxEvents`). */
    prefetch: 100,
  },
  /** Store internals, for those who build stores by hand. */
  stores: {
    /** How long `take` waits for an event before returning none. */
    takeWaitMs: 1000, // 1s
    /** SQLite: how often another process's appends are looked for. */
    sqlitePollMs: 1000, // 1s
    sqliteBusyTimeoutMs: 5000, // 5s
    sqliteSynchronous: 'normal' as 'off' | 'normal' | 'full' | 'extra',
    /** SQLite: how long a consumer's lease on a queue lasts unless renewed (a killed holder's runs out). */
    sqliteLeaseMs: 10_000, // 10s
    /** SQLite: how often the holder renews its lease; well within `sqliteLeaseMs`. */
    sqliteLeaseRenewMs: 3000, // 3s
    /** Redis: how long `open()` waits for PING. */
    redisConnectTimeoutMs: 2000, // 2s
    redisGroup: 'delivery',
    /** Redis: after a connection failed to open, how long uses fail at once before one tries again. */
    redisReopenMs: 1000, // 1s
    /** Redis: a consumer that holds nothing is removed from the group after this long without reading (at least 3 × `claimidle`). */
    redisRemoveConsumerIdleMs: 10 * 60_000, // 10m
    /** Dead letters listed when no limit is given. */
    deadLetterListLimit: 100,
    /** Most dead letters a memory store keeps; 0 is no limit. */
    memoryDeadLetterLimit: 10_000,
    /** Delivery log: a recorder writes what it buffered at least this often. */
    logFlushMs: 20, // 20ms
    /** Delivery log: most entries buffered while the log store is slow or down; past it the oldest are dropped and counted. */
    logBufferLimit: 20_000,
  },
  /** Broker destinations: endpoints whose `url` is `nats://`, `amqp(s)://` or `mqtt(s)://`. */
  broker: {
    /** NATS: `subject`, the subject template. */
    subject: 'registry.events.{action}.{kind}',
    /** NATS: `createstream`, create `stream` when it does not exist. */
    createStream: false,
    /** AMQP: `exchange`; RabbitMQ's predeclared topic exchange, present on every vhost. */
    exchange: 'amq.topic',
    /** AMQP: `routingkey`, the routing key template. */
    routingKey: 'registry.events.{action}.{kind}',
    /** MQTT: `topic`, the topic template. */
    topic: 'registry/events/{action}/{kind}',
    /** MQTT: `qos`; 1 (at least once) or 2. */
    qos: 1 as 1 | 2,
    /** MQTT: `mqttversion`; `5`, or `3.1.1` for brokers without MQTT 5 (no binary CloudEvents then). */
    mqttVersion: '5' as '5' | '3.1.1',
  },
  /** Per-endpoint stats. */
  stats: {
    /** How often Pending is recounted from the store (other replicas of a shared store change it). */
    pendingResyncMs: 5000, // 5s
  },
  /** The HTTP sink's transport. */
  http: {
    userAgent: 'registry-notifications',
    maxSockets: 4,
    /** Longest wait a `Retry-After` answer is honoured for (at least the endpoint's `maxbackoff`). */
    maxRetryAfterMs: 5 * 60 * 1000, // 5m
    /** Failed attempts are logged at most once per this, per endpoint, with a count of the rest. */
    failureLogIntervalMs: 10_000, // 10s
    /** Bytes of each answer's body kept for the attempt log (the rest is read and discarded). */
    answerCaptureBytes: 1024, // 1 KiB
  },
  /** `createReceiver` and `verifyWebhook`. */
  receiver: {
    toleranceSec: 5 * 60, // 5 minutes, as Standard Webhooks recommends
    limit: 1024 * 1024, // 1 MiB
  },
  /** Receivers' duplicate detection. */
  deduplicator: {
    windowMs: 10 * 60 * 1000, // 10 minutes
    /** Redis: how long an id stays claimed while its handler runs. */
    claimMs: 60_000, // 1 minute
    maxEntries: 100_000,
    prefix: 'webhook:seen:',
  },
  /** `ExponentialBackoff`, a breaker that opens at the first failure. */
  exponentialBackoff: {
    baseMs: 1000, // 1s
    maxMs: 60_000, // 1m
    jitter: 0.5,
  },
  /** `notifications.log`: the attempt and event logs the console reads, bounded per endpoint. */
  log: {
    attempts: 10_000,
    events: 100_000,
    retentionMs: 24 * 60 * 60 * 1000, // 24h
  },
  /** `notifications.feed`: the pull feed (`GET /events`), kept in the log's store, bounded by `log.events` and `log.retention`. */
  feed: {
    enabled: false,
    /** Longest long poll; a longer `wait=` is cut to it. */
    maxWaitMs: 60_000, // 60s
    /** While a reader waits, how often the log is looked at for events other processes (replicas) wrote. */
    pollMs: 100, // 100ms
    /** Most rows one read looks at for events of the asked topics before it answers with a cursor to go on from. */
    scanRows: 5000,
    /** Between two comments that keep an idle event stream open through proxies. */
    heartbeatMs: 15_000, // 15s
  },
});

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(value);
}
