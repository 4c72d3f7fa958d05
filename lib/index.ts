// The package root: what a registry author and a webhook consumer use. Those who
// compose their own pipeline find the sinks, Endpoint, stores, Bridge and listener in
// `registry-notifications/pipeline`. Everything else is internal.

// Emit: the middleware and its pipeline.
export { createNotifications } from './notifications';
export type { EndpointVars, Notifications, NotificationsOptions } from './notifications';
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

// Configuration: the one loader and every default.
export { loadNotificationsConfig, parseNotificationsConfig, readConfigFile } from './config/load';
export type { LoadOptions } from './config/load';
export { applyEnvOverrides, parseWithEnvOverrides } from './config/env-overrides';
export { DEFAULTS } from './config/defaults';
export { ConfigError, parseDuration } from './config/values';
export type { EndpointConfig, EventRules, FeedConfig, NotificationsConfig, QueueConfig, QueueType } from './config/normalize';

// The event model.
export { BLOB_MEDIA_TYPE, EVENT_ACTIONS, EVENT_KINDS, EVENTS_MEDIA_TYPE_V1, EVENTS_MEDIA_TYPE_V2 } from './model/event';
export type {
  ActorRecord,
  Descriptor,
  Envelope,
  EnvelopeVersion,
  Event,
  EventAction,
  EventKind,
  Platform,
  RequestRecord,
  SourceRecord,
  Target,
} from './model/event';
export { EVENT_TYPES, eventKind, eventType } from './model/event-kind';
export type { EventType, KnownEventType } from './model/event-kind';

// Codecs: Distribution's envelope and Standard Webhooks signatures.
export { decodeEnvelope, encodeEnvelope, EnvelopeFormatError } from './codec/envelope';
export type { EncodeOptions } from './codec/envelope';
export {
  signWebhook,
  verifyWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WebhookSecretError,
  WebhookVerificationError,
} from './codec/signing';
export type { HeaderBag, VerifyOptions } from './codec/signing';

// Receive.
export { createReceiver, EventHandlerError, ReceiverError, ReceiverOptionsError } from './receive/receiver';
export type { EventHandler, EventHandlers, ReceiverOptions } from './receive/receiver';
export { ClosedDeduplicatorError, DeduplicatorOptionsError, MemoryDeduplicator } from './receive/deduplicator';
export type { Deduplicator, MemoryDeduplicatorOptions } from './receive/deduplicator';
export { RedisDeduplicator } from './receive/redis-deduplicator';
export type { RedisDeduplicatorOptions } from './receive/redis-deduplicator';
export { FeedGoneError, FeedRequestError, followEvents } from './receive/follow';
export type { FollowOptions } from './receive/follow';

// Inspect.
export { createStatsRouter } from './inspect/stats-router';
export type { StatsRouterOptions } from './inspect/stats-router';
export { requireAdmin } from './inspect/admin-auth';
export { createFeedRouter } from './inspect/feed-router';
export type { FeedRouterOptions } from './inspect/feed-router';
export type { EventFeed } from './inspect/event-feed';
export type { AdminAuth } from './inspect/admin-auth';
export type { AttemptRecord, EventState, LoggedEvent } from './stores/delivery-log';
export type { EndpointCounters } from './inspect/endpoint-stats';

// Errors a caller catches.
export { StoreClosedError, StoreFullError, StoreOpenError } from './stores/queue-store';
export { MissingDriverError } from './stores/drivers';
