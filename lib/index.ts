// The public API, by name. `demo-registry/` and users import only from here.
export {
  EVENTS_MEDIA_TYPE_V1,
  EVENTS_MEDIA_TYPE_V2,
  BLOB_MEDIA_TYPE,
  EVENT_ACTIONS,
  newEventId,
  eventTimestamp,
  formatTimestamp,
} from './event';
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
} from './event';
export { encodeEnvelope, encodeEvent, decodeEnvelope, decodeEvent, envelopeMediaType, EnvelopeFormatError } from './envelope';
export type { EncodeOptions } from './envelope';

export { ClosedSinkError } from './sink';
export type { Sink } from './sink';
export { Broadcaster } from './broadcaster';
export type { BroadcasterOptions } from './broadcaster';
export { Queue } from './queue';
export type { QueueHooks, QueueOptions } from './queue';
export { Breaker, ExponentialBackoff, RetryingSink, RetriesExhaustedError } from './retrying-sink';
export type { BreakerOptions, BreakerState, ExponentialBackoffOptions, RetryStrategy, RetryingSinkOptions } from './retrying-sink';
export { Filter } from './filter';
export type { FilterOptions, MatchRules } from './filter';
export { globToRegExp, globMatcher } from './glob';
export { payloadEncoder } from './formats';
export { HttpSink, HttpStatusError, HttpDeliveryError, parseRetryAfter } from './http-sink';
export type { HttpSinkHooks, HttpSinkOptions, EncodedRequest } from './http-sink';
export { Endpoint } from './endpoint';
export type { EndpointInit, EndpointOptions } from './endpoint';
export { RequestTransaction } from './transaction';

export { StoreFullError, StoreOpenError, StoreClosedError } from './store';
export type { QueueStore, StoredEvent } from './store';
export { MemoryStore } from './stores/memory-store';
export type { MemoryStoreOptions } from './stores/memory-store';
export { createEndpointStores } from './stores';
export type { EndpointStores } from './stores';
export { SqliteStore, openSqliteDatabase } from './stores/sqlite-store';
export type { SqliteStoreOptions, OpenSqliteOptions } from './stores/sqlite-store';
export { RedisStore } from './stores/redis-store';
export type { RedisStoreOptions } from './stores/redis-store';
export { MemoryDeadLetterStore, SqliteDeadLetterStore, RedisDeadLetterStore } from './stores/dead-letter';
export type {
  DeadLetter,
  DeadLetterStore,
  MemoryDeadLetterStoreOptions,
  SqliteDeadLetterStoreOptions,
  RedisDeadLetterStoreOptions,
} from './stores/dead-letter';

export { Bridge, urlBuilderFor } from './bridge';
export type { BridgeOptions, RepositoryListener, UrlBuilder } from './bridge';
export { listenRepository } from './listener';
export type { NotificationErrorHandler } from './listener';
export type {
  Blob,
  BlobService,
  Manifest,
  ManifestRef,
  ManifestService,
  Repository,
  StoredManifest,
  TagService,
} from './repository';
export { describeManifest, manifestReferences, sha256Digest, ManifestFormatError, MANIFEST_MEDIA_TYPES } from './manifest';
export type { ManifestDescription } from './manifest';
export { remoteAddr, requestRecord, requestBaseUrl, defaultActor } from './request';

export {
  ConfigError,
  DEFAULT_ENDPOINT,
  DEFAULT_QUEUE,
  PAYLOAD_FORMATS,
  emptyRules,
  parseDuration,
  parseNotificationsConfig,
  loadNotificationsConfig,
  readConfigFile,
  expectMapping,
  expectString,
  expectBoolean,
  describeValue,
} from './config';
export type { EndpointConfig, EventRules, NotificationsConfig, PayloadFormat, QueueConfig, QueueType } from './config';

export { EndpointStats } from './stats';
export type { EndpointCounters } from './stats';
export { NotificationMetrics } from './metrics';
export { createNotifications } from './middleware';
export { createStatsRouter } from './stats-router';
export type { StatsRouterOptions } from './stats-router';
export type { EndpointVars, Notifications, NotificationsOptions } from './middleware';

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
} from './signing';
export type { HeaderBag, VerifyOptions } from './signing';
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
} from './cloudevents';
export type { CloudEvent, CloudEventAttributes, EncodedCloudEvents, EventKind, EventType, KnownEventType } from './cloudevents';
export {
  MemoryDeduplicator,
  RedisDeduplicator,
  DEFAULT_DEDUPE_OPTIONS,
  DeduplicatorOptionsError,
  ClosedDeduplicatorError,
} from './dedupe';
export type { Deduplicator, MemoryDeduplicatorOptions, RedisDeduplicatorOptions } from './dedupe';
export { createReceiver, DEFAULT_RECEIVER_OPTIONS, ReceiverError, ReceiverOptionsError, EventHandlerError } from './receiver';
export type { EventHandler, EventHandlers, ReceiverOptions } from './receiver';
