// The public API, by name. `demo-registry/` and users import only from here.
export {
  EVENTS_MEDIA_TYPE_V1,
  EVENTS_MEDIA_TYPE_V2,
  BLOB_MEDIA_TYPE,
  EVENT_ACTIONS,
  newEventId,
  eventTimestamp,
  formatTimestamp,
} from './model/event';
export type {
  ActorRecord,
  Descriptor,
  Envelope,
  EnvelopeVersion,
  Event,
  EventAction,
  Platform,
  RequestRecord,
  SourceRecord,
  Target,
} from './model/event';
export { encodeEnvelope, encodeEvent, decodeEnvelope, decodeEvent, envelopeMediaType, EnvelopeFormatError } from './codec/envelope';
export type { EncodeOptions } from './codec/envelope';

export { ClosedSinkError } from './deliver/sink';
export type { Sink } from './deliver/sink';
export { Broadcaster } from './deliver/broadcaster';
export type { BroadcasterOptions } from './deliver/broadcaster';
export { Queue } from './deliver/queue';
export type { QueueHooks, QueueOptions } from './deliver/queue';
export { Breaker, ExponentialBackoff, RetryingSink, RetriesExhaustedError } from './deliver/retrying-sink';
export type { BreakerOptions, BreakerState, ExponentialBackoffOptions, RetryStrategy, RetryingSinkOptions } from './deliver/retrying-sink';
export { Filter } from './deliver/filter';
export type { FilterOptions, MatchRules } from './deliver/filter';
export { globToRegExp, globMatcher } from './deliver/glob';
export { payloadEncoder } from './codec/payload';
export { HttpSink, HttpStatusError, HttpDeliveryError, parseRetryAfter } from './deliver/http-sink';
export type { HttpSinkHooks, HttpSinkOptions } from './deliver/http-sink';
export { PAYLOAD_FORMATS } from './codec/payload';
export type { EncodedRequest, PayloadFormat } from './codec/payload';
export { Endpoint } from './deliver/endpoint';
export type { EndpointInit, EndpointOptions } from './deliver/endpoint';
export { RequestTransaction } from './emit/held-events';

export { StoreFullError, StoreOpenError, StoreClosedError } from './stores/queue-store';
export type { QueueStore, StoredEvent } from './stores/queue-store';
export { MemoryStore } from './stores/memory-store';
export type { MemoryStoreOptions } from './stores/memory-store';
export { createEndpointStores } from './stores/create-stores';
export type { EndpointStores } from './stores/create-stores';
export { SqliteStore, openSqliteDatabase } from './stores/sqlite-store';
export type { SqliteStoreOptions, OpenSqliteOptions } from './stores/sqlite-store';
export { RedisStore } from './stores/redis-store';
export type { RedisStoreOptions } from './stores/redis-store';
export { MemoryDeadLetterStore, SqliteDeadLetterStore, RedisDeadLetterStore } from './stores/dead-letter-store';
export type {
  DeadLetter,
  DeadLetterStore,
  MemoryDeadLetterStoreOptions,
  SqliteDeadLetterStoreOptions,
  RedisDeadLetterStoreOptions,
} from './stores/dead-letter-store';

export { Bridge, urlBuilderFor } from './emit/bridge';
export type { BridgeOptions, RepositoryListener, UrlBuilder } from './emit/bridge';
export { listenRepository } from './emit/listener';
export type { NotificationErrorHandler } from './emit/listener';
export type {
  Blob,
  BlobService,
  Manifest,
  ManifestRef,
  ManifestService,
  Repository,
  StoredManifest,
  TagService,
} from './emit/repository';
export { describeManifest, manifestReferences, sha256Digest, ManifestFormatError, MANIFEST_MEDIA_TYPES } from './model/manifest';
export type { ManifestDescription } from './model/manifest';
export { remoteAddr, requestRecord, requestBaseUrl, defaultActor } from './emit/request-record';

export {
  ConfigError,
  DEFAULT_ENDPOINT,
  DEFAULT_QUEUE,
  emptyRules,
  parseDuration,
  parseNotificationsConfig,
  loadNotificationsConfig,
  readConfigFile,
  expectMapping,
  expectString,
  expectBoolean,
  describeValue,
} from './config/load';
export type { EndpointConfig, EventRules, NotificationsConfig, QueueConfig, QueueType } from './config/load';

export { EndpointStats } from './inspect/endpoint-stats';
export type { EndpointCounters } from './inspect/endpoint-stats';
export { NotificationMetrics } from './inspect/metrics';
export { createNotifications } from './notifications';
export { createStatsRouter } from './inspect/stats-router';
export type { StatsRouterOptions } from './inspect/stats-router';
export type { EndpointVars, Notifications, NotificationsOptions } from './notifications';

export {
  signWebhook,
  verifyWebhook,
  webhookSigner,
  deliveryId,
  secretKey,
  WebhookVerificationError,
  WebhookSecretError,
  WEBHOOK_ID_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  SECRET_PREFIX,
  DEFAULT_VERIFY_OPTIONS,
} from './codec/signing';
export type { HeaderBag, VerifyOptions } from './codec/signing';
export {
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  CLOUDEVENTS_BATCH_MEDIA_TYPE,
  CLOUDEVENT_TYPE_PREFIX,
  EVENT_KINDS,
  EVENT_TYPES,
  eventKind,
  eventType,
  cloudEventType,
  toCloudEvent,
  fromCloudEvent,
  encodeStructured,
  encodeBatch,
  encodeBinary,
  decodeStructured,
  decodeBatch,
  decodeBinary,
  CloudEventFormatError,
} from './codec/cloudevents';
export type { CloudEvent, CloudEventAttributes, EncodedCloudEvents, EventKind, EventType, KnownEventType } from './codec/cloudevents';
export {
  MemoryDeduplicator,
  RedisDeduplicator,
  DEFAULT_DEDUPE_OPTIONS,
  DeduplicatorOptionsError,
  ClosedDeduplicatorError,
} from './receive/deduplicator';
export type { Deduplicator, MemoryDeduplicatorOptions, RedisDeduplicatorOptions } from './receive/deduplicator';
export { createReceiver, DEFAULT_RECEIVER_OPTIONS, ReceiverError, ReceiverOptionsError, EventHandlerError } from './receive/receiver';
export type { EventHandler, EventHandlers, ReceiverOptions } from './receive/receiver';
