// `registry-notifications/pipeline`: the parts of the notification pipeline, for those
// who compose their own instead of calling `createNotifications`. Every sink honours
// the one `Sink` contract; each wrapper takes the sink it wraps first.

// The sink contract and the sinks.
export { ClosedSinkError } from './deliver/sink';
export type { Sink } from './deliver/sink';
export { Broadcaster } from './deliver/broadcaster';
export type { BroadcasterOptions } from './deliver/broadcaster';
export { Filter } from './deliver/filter';
export type { FilterOptions, MatchRules } from './deliver/filter';
export { Queue } from './deliver/queue';
export type { QueueHooks, QueueOptions } from './deliver/queue';
export { Breaker, ExponentialBackoff } from './deliver/breaker';
export type { BreakerOptions, BreakerState, ExponentialBackoffOptions, RetryStrategy } from './deliver/breaker';
export { RetriesExhaustedError, RetryingSink, WriteInterruptedError } from './deliver/retrying-sink';
export type { RetryingSinkOptions } from './deliver/retrying-sink';
export { HttpDeliveryError, HttpSink, HttpStatusError, parseRetryAfter } from './deliver/http-sink';
export type { HttpSinkHooks, HttpSinkOptions } from './deliver/http-sink';
export { Endpoint } from './deliver/endpoint';
export type { EndpointOptions } from './deliver/endpoint';
export { createDestinationSink, destinationKind } from './deliver/destination';
export type { DestinationKind, DestinationOptions, DestinationSink } from './deliver/destination';
export { BrokerDeliveryError, BrokerTimeoutError } from './deliver/broker-sink';
export type { BrokerSinkHooks, BrokerSinkOptions } from './deliver/broker-sink';
export { NatsSink } from './deliver/nats-sink';
export type { NatsSinkOptions } from './deliver/nats-sink';
export { AmqpSink, UnroutableError } from './deliver/amqp-sink';
export type { AmqpSinkOptions } from './deliver/amqp-sink';
export { MqttSink } from './deliver/mqtt-sink';
export type { MqttSinkOptions } from './deliver/mqtt-sink';
export { emptyRules, normalizeEndpoint, normalizeQueue } from './config/normalize';
export type { EndpointInit, QueueInit } from './config/normalize';

// Request bodies.
export { PAYLOAD_FORMATS, payloadEncoder } from './codec/payload';
export type { EncodedRequest, PayloadFormat } from './codec/payload';
export { decodeEvent, encodeEvent, envelopeMediaType } from './codec/envelope';
export {
  CLOUDEVENTS_BATCH_MEDIA_TYPE,
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  CloudEventFormatError,
  fromCloudEvent,
  toCloudEvent,
} from './codec/cloudevents';
export type { CloudEvent, CloudEventAttributes } from './codec/cloudevents';
export { webhookSigner } from './codec/signing';
export { brokerMessageEncoder, decodeBrokerMessage, MESSAGE_FORMATS } from './codec/cloudevents-bindings';
export type { BrokerBinding, BrokerMessage, MessageFormat } from './codec/cloudevents-bindings';

// Stores: pending events and dead letters.
export { StoreClosedError, StoreCorruptError, StoreFullError, StoreOpenError } from './stores/queue-store';
export type { EndpointControl, QueueStore, StoredEvent } from './stores/queue-store';
export { MemoryStore } from './stores/memory-store';
export type { MemoryStoreOptions } from './stores/memory-store';
export { SqliteStore } from './stores/sqlite-store';
export type { SqliteStoreOptions } from './stores/sqlite-store';
export { RedisStore } from './stores/redis-store';
export type { RedisStoreOptions } from './stores/redis-store';
export type { DeadLetter, DeadLetterStore } from './stores/dead-letter-store';
export { MemoryDeadLetterStore } from './stores/memory-dead-letters';
export type { MemoryDeadLetterStoreOptions } from './stores/memory-dead-letters';
export { SqliteDeadLetterStore } from './stores/sqlite-dead-letters';
export type { SqliteDeadLetterStoreOptions } from './stores/sqlite-dead-letters';
export { RedisDeadLetterStore } from './stores/redis-dead-letters';
export type { RedisDeadLetterStoreOptions } from './stores/redis-dead-letters';
export { refusableAppends, SpoolingStore, StoreUnavailableError } from './stores/spooling-store';
export type { AppendRefusals, SpoolHooks, SpoolingStoreOptions } from './stores/spooling-store';
export { createEndpointStores } from './stores/create-stores';
export type { EndpointStores } from './stores/create-stores';

// Emit: operations to events.
export { Bridge, urlBuilderFor } from './emit/bridge';
export type { BridgeOptions, RepositoryListener, UrlBuilder } from './emit/bridge';
export { listenRepository } from './emit/listener';
export type { NotificationErrorHandler } from './emit/listener';
export { newEventId, eventTimestamp } from './model/event';
export { describeManifest, MANIFEST_MEDIA_TYPES } from './model/manifest';

// Stats: what sinks report, as counters and Prometheus series.
export { ENDPOINT_STATES, EndpointStats } from './inspect/endpoint-stats';
export { NotificationMetrics } from './inspect/metrics';

// The console's attempt and event logs, and the recorder that feeds them from the hooks.
export { DeliveryRecorder } from './inspect/delivery-recorder';
export type { DeliveryRecorderOptions } from './inspect/delivery-recorder';
export { BadCursorError } from './stores/delivery-log';
export type { AttemptRecord, DeliveryLog, DeliveryLogLimits, EventQuery, FeedItem, FeedMark, FeedScan, LoggedEvent, LogEntry } from './stores/delivery-log';
export { MemoryDeliveryLog } from './stores/memory-delivery-log';
export { SqliteDeliveryLog } from './stores/sqlite-delivery-log';
export type { SqliteDeliveryLogOptions } from './stores/sqlite-delivery-log';
export { RedisDeliveryLog } from './stores/redis-delivery-log';
export type { RedisDeliveryLogOptions } from './stores/redis-delivery-log';
export { createDeliveryLog } from './stores/create-stores';
