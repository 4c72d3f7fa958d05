import { PAYLOAD_FORMATS, type PayloadFormat } from '../codec/payload';
import { expandTopics } from '../model/topic';
import { secretKey } from '../codec/signing';
import { AMQP_ROUTES, MQTT_ROUTES, NATS_ROUTES, routeTemplate, type RouteSyntax } from '../codec/route-template';
import { EVENT_ACTIONS, EVENT_KINDS, type EnvelopeVersion, type EventKind } from '../model/event';
import { DEFAULTS } from './defaults';
import {
  ConfigError,
  describeValue,
  expectBoolean,
  expectDuration,
  expectInteger,
  expectString,
  expectStrings,
  isHeaderName,
  unsafeHeaderChar,
} from './values';

export type QueueType = 'memory' | 'sqlite' | 'redis';

/** Where each endpoint keeps its pending events (`notifications.queue`), every default filled in. */
export interface QueueConfig {
  /** `type`. @default 'memory' */
  type: QueueType;
  /** `path`: the SQLite file; required for `sqlite`. */
  path?: string;
  /** `url`: the Redis URL; required for `redis`. */
  url?: string;
  /** `limit`: most events held per endpoint by the `memory` store; 0 is no limit. @default 0 */
  limit: number;
  /** `draintimeout`: on shutdown, how long to keep delivering before leaving events in the store. @default 2000 (2s) */
  drainTimeoutMs: number;
  /** `prefix`: `redis` only, prefix of every key, so several registries can share a server. @default 'regnotify' */
  prefix: string;
  /**
   * `claimidle`: `redis` only, how long the events a replica took stay with it once it
   * stops touching them (a live replica touches them every third of this); then another
   * replica takes them over. @default 60000 (1m)
   */
  claimIdleMs: number;
  /**
   * `committimeout`: how long a successful response waits, at most, for the store to
   * hold the events of its request; past it the response goes out and the write goes on.
   * The memory and SQLite stores commit at once; Redis takes a round trip. @default 250
   */
  commitTimeoutMs: number;
  /**
   * `spooldir`: `sqlite` and `redis`, where the events a store cannot take within
   * `commitTimeoutMs` wait on disk (a file per endpoint) until it can; relative to the
   * working directory. @default 'notifications-spool'
   */
  spoolDir: string;
  /**
   * `onstoreerror`: when a success response's events cannot be stored within
   * `commitTimeoutMs`: `spool` them (the response goes out as is), or `fail` the request
   * with 503 and `Retry-After`, its events dropped, so that the client retries. @default 'spool'
   */
  onStoreError: 'spool' | 'fail';
}

/** Lists of `ignore` and `include`: media types and actions (Distribution's), repositories and tags (globs), kinds. */
export interface EventRules {
  mediaTypes: string[];
  actions: string[];
  repositories: string[];
  tags: string[];
  kinds: EventKind[];
  /** Topics in containerd's shape (`/manifest/push`), or patterns of them (`/manifest/*`). */
  topics: string[];
}

/** One webhook endpoint (`notifications.endpoints[]`), every default filled in. */
export interface EndpointConfig {
  /** `name`: names the endpoint in stats and metrics; required, unique. */
  name: string;
  /** `url`: where events are POSTed; required. */
  url: string;
  /** `disabled`. @default false */
  disabled: boolean;
  /** `headers`: static headers, a list of values per name. @default {} */
  headers: Record<string, string[]>;
  /** `timeout`: the deadline of one attempt. @default 1000 (1s) */
  timeoutMs: number;
  /** `threshold`: consecutive failures before the breaker opens. @default 10 */
  threshold: number;
  /** `backoff`: how long an open breaker waits between attempts. @default 1000 (1s) */
  backoffMs: number;
  /** `maxbackoff`: most wait between attempts; the wait doubles per failed probe up to here. @default backoffMs (Distribution's fixed wait) */
  maxBackoffMs: number;
  /** `jitter`: fraction of each wait drawn at random, 0 to 1. @default 0 */
  jitter: number;
  /** `ignoredmediatypes`: Distribution's legacy list of target media types to ignore. @default [] */
  ignoredMediaTypes: string[];
  /** `ignore`: events matching any list are not sent. @default every list empty */
  ignore: EventRules;
  /** `include`: when a list is given, only events matching it are sent. @default every list empty */
  include: EventRules;
  /** `format`: the body's format. @default 'distribution' */
  format: PayloadFormat;
  /** `secrets`: Standard Webhooks secrets; each request is signed with every one (rotation). @default [] */
  secrets: string[];
  /** `maxretries`: failed attempts after the first before an event is dead-lettered; -1 retries forever. @default -1 */
  maxRetries: number;
  /**
   * `maxevents`: most events in one request. An idle endpoint gets one event per request,
   * Distribution's bytes; events that piled up behind a request in flight go together up
   * to this many; 1 is strictly one per request, as Distribution.
   * @default 250; 1 for the single-event formats `cloudevents` and `cloudevents-binary`
   */
  maxEvents: number;
  /**
   * `maxbytes`: most bytes of body in one request; a single event larger than this goes
   * alone. 0 is no limit. @default 262144 (256 KiB)
   */
  maxBytes: number;
  /**
   * `linger`: with `maxEvents` > 1, while events keep coming, a request that is not full
   * waits until this long after the previous request started, to carry more; an event
   * after a quiet spell goes out at once. 0 never waits. @default 10 (10ms)
   */
  lingerMs: number;
  /** `envelope`: media type generation, v1 (Distribution 2.x) or v2 (3.x). @default 'v1' */
  envelope: EnvelopeVersion;
  /**
   * `queuesizelimit` (GitLab's container registry): most events this endpoint's `memory`
   * queue holds, in place of `queue.limit`; past it new events are dropped and counted.
   * Zero or absent: `queue.limit`. @default undefined (`queue.limit`)
   */
  queueSizeLimit?: number;
  /**
   * `queuepurgetimeout` (GitLab's container registry): on shutdown, how long this endpoint
   * keeps delivering, in place of `queue.draintimeout`. Zero or absent: `queue.draintimeout`.
   * @default undefined (`queue.draintimeout`)
   */
  queuePurgeTimeoutMs?: number;
  // Broker destinations: each field is set, default filled, only for the scheme it serves.
  /** `subject` (`nats://`): subject template, with `{action}`, `{kind}`, `{repository}`. @default 'registry.events.{action}.{kind}' */
  subject?: string;
  /** `stream` (`nats://`): the JetStream stream that must store the events. @default none: whichever stream captures the subject */
  stream?: string;
  /** `createstream` (`nats://`): create `stream` when it does not exist. @default false */
  createStream?: boolean;
  /** `exchange` (`amqp(s)://`): the exchange messages are published to; it must exist. @default 'amq.topic' */
  exchange?: string;
  /** `routingkey` (`amqp(s)://`): routing key template. @default 'registry.events.{action}.{kind}' */
  routingKey?: string;
  /** `topic` (`mqtt(s)://`): topic template. @default 'registry/events/{action}/{kind}' */
  topic?: string;
  /** `qos` (`mqtt(s)://`): 1 (at least once) or 2. @default 1 */
  qos?: 1 | 2;
  /** `mqttversion` (`mqtt(s)://`): `5`, or `3.1.1` (no properties: no binary CloudEvents). @default '5' */
  mqttVersion?: '5' | '3.1.1';
}

/** What the console's delivery log keeps (`notifications.log`), per endpoint, in the queue's store kind. */
export interface LogConfig {
  /** `attempts`: most attempts kept per endpoint; 0 keeps none. @default 10000 */
  attempts: number;
  /** `events`: most events kept per endpoint in the event log; 0 keeps none. @default 100000 */
  events: number;
  /** `retention`: how long attempts and events are kept. @default 86400000 (24h) */
  retentionMs: number;
}

/** The pull feed (`notifications.feed`). */
export interface FeedConfig {
  /** `enabled`: record every event emitted for `GET /events`. @default false */
  enabled: boolean;
}

/** The `notifications:` section of a Distribution config.yml, normalized. */
export interface NotificationsConfig {
  /** `events.includereferences`. @default false */
  includeReferences: boolean;
  queue: QueueConfig;
  /** The console's attempt and event logs. @default DEFAULTS.log */
  log: LogConfig;
  /** The pull feed. @default DEFAULTS.feed (off) */
  feed: FeedConfig;
  endpoints: EndpointConfig[];
}

/** Makes every field optional, `undefined` included: an explicit `undefined` takes the default. */
type Loose<T> = { [K in keyof T]?: T[K] | undefined };

/** An endpoint as code gives it: `name` and `url`, and any field to change from its default. */
export type EndpointInit = Pick<EndpointConfig, 'name' | 'url'> &
  Loose<Omit<EndpointConfig, 'name' | 'url' | 'ignore' | 'include'>> & {
    ignore?: Loose<EventRules>;
    include?: Loose<EventRules>;
  };

export type QueueInit = Loose<QueueConfig>;

/** How the normaliser names a field in its errors: as YAML spells it, or as code does. */
export type FieldNames = 'yaml' | 'code';

const YAML_NAMES: Record<string, string> = {
  timeoutMs: 'timeout',
  backoffMs: 'backoff',
  maxBackoffMs: 'maxbackoff',
  ignoredMediaTypes: 'ignoredmediatypes',
  maxRetries: 'maxretries',
  maxEvents: 'maxevents',
  maxBytes: 'maxbytes',
  lingerMs: 'linger',
  mediaTypes: 'mediatypes',
  drainTimeoutMs: 'draintimeout',
  claimIdleMs: 'claimidle',
  commitTimeoutMs: 'committimeout',
  spoolDir: 'spooldir',
  onStoreError: 'onstoreerror',
  queueSizeLimit: 'queuesizelimit',
  queuePurgeTimeoutMs: 'queuepurgetimeout',
  createStream: 'createstream',
  routingKey: 'routingkey',
  mqttVersion: 'mqttversion',
  retentionMs: 'retention',
};

function namer(field: string, names: FieldNames): (key: string) => string {
  return (key) => `${field}.${names === 'yaml' ? (YAML_NAMES[key] ?? key) : key}`;
}

/** Distribution treats a zero or negative timeout, threshold or backoff as "use the default". */
const positiveOr = (n: number, fallback: number) => (n > 0 ? n : fallback);
const positiveOrUnset = (n: number, fallback: number | undefined) => (n > 0 ? n : fallback);

function normalizeHeaders(value: unknown, field: string): Record<string, string[]> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(field, `expected a mapping of header names to lists of values, got ${describeValue(value)}`);
  }
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(value)) {
    if (!isHeaderName(name)) throw new ConfigError(`${field}.${name}`, 'not a valid HTTP header name');
    // Distribution writes each header as a list; a single string is accepted too.
    const list = typeof values === 'string' ? [values] : expectStrings(values, `${field}.${name}`);
    list.forEach((v, i) => {
      // CR or LF would end the header (or the request) early; Node refuses the rest.
      const bad = unsafeHeaderChar(v);
      if (bad) throw new ConfigError(`${field}.${name}[${i}]`, `a header value must not contain ${bad}: an HTTP header cannot carry it`);
    });
    out[name] = list;
  }
  return out;
}

function oneOf<T extends string>(list: string[], allowed: readonly T[], field: string, what: string): T[] {
  list.forEach((v, i) => {
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(`${field}[${i}]`, `unknown ${what} ${JSON.stringify(v)}; allowed: ${allowed.join(', ')}`);
    }
  });
  return list as T[];
}

function normalizeRules(rules: Loose<EventRules> | undefined, field: string, names: FieldNames): EventRules {
  const r = rules ?? {};
  const at = namer(field, names);
  return {
    mediaTypes: expectStrings(r.mediaTypes, at('mediaTypes')),
    actions: oneOf(expectStrings(r.actions, at('actions')), EVENT_ACTIONS, at('actions'), 'action'),
    repositories: expectStrings(r.repositories, at('repositories')),
    tags: expectStrings(r.tags, at('tags')),
    kinds: oneOf(expectStrings(r.kinds, at('kinds')), EVENT_KINDS, at('kinds'), 'kind'),
    topics: topicPatterns(expectStrings(r.topics, at('topics')), at('topics')),
  };
}

/** Topic patterns that each select at least one topic. */
function topicPatterns(list: string[], field: string): string[] {
  list.forEach((pattern, i) => {
    try {
      expandTopics([pattern]);
    } catch (err) {
      throw new ConfigError(`${field}[${i}]`, (err as Error).message);
    }
  });
  return list;
}

/**
 * The one normaliser of an endpoint: the YAML loader, `createNotifications` and
 * `new Endpoint(...)` all come through here. Fills every default (an explicit
 * `undefined` takes it too), checks every value, and throws `ConfigError` naming the
 * field, the value and what is allowed.
 */
export function normalizeEndpoint(init: EndpointInit, field = 'endpoint', names: FieldNames = 'code'): EndpointConfig {
  const d = DEFAULTS.endpoint;
  const at = namer(field, names);
  const name = expectString(init.name, at('name'));
  if (!name) throw new ConfigError(at('name'), 'required: every endpoint needs a name');
  const url = expectString(init.url, at('url'));
  if (!url) throw new ConfigError(at('url'), 'required: the URL events are POSTed to');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(at('url'), `invalid URL ${JSON.stringify(url)}`);
  }
  const scheme = parsed.protocol.slice(0, -1);
  if (!ENDPOINT_SCHEMES.includes(scheme)) {
    throw new ConfigError(at('url'), `unsupported scheme ${JSON.stringify(parsed.protocol)}; use ${ENDPOINT_SCHEMES.map((s) => `${s}:`).join(', ')}`);
  }
  const envelope = init.envelope ?? d.envelope;
  if (envelope !== 'v1' && envelope !== 'v2') throw new ConfigError(at('envelope'), `expected v1 or v2, got ${describeValue(envelope)}`);
  const format = init.format ?? d.format;
  if (!PAYLOAD_FORMATS.includes(format)) {
    throw new ConfigError(at('format'), `expected one of ${PAYLOAD_FORMATS.join(', ')}, got ${describeValue(format)}`);
  }
  // CloudEvents' structured and binary modes carry one event per request: their default is 1.
  const singleEvent = format === 'cloudevents' || format === 'cloudevents-binary';
  const maxEvents = expectInteger(init.maxEvents, at('maxEvents'), singleEvent ? 1 : d.maxEvents, 1);
  if (maxEvents > 1 && singleEvent) {
    throw new ConfigError(at('maxEvents'), `${format} carries one event per request; use format cloudevents-batch or distribution to send ${maxEvents}`);
  }
  const jitter = init.jitter ?? d.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new ConfigError(at('jitter'), `expected a fraction from 0 to 1, got ${describeValue(jitter)}`);
  }
  const secrets = expectStrings(init.secrets, at('secrets'));
  secrets.forEach((secret, i) => {
    try {
      secretKey(secret);
    } catch (err) {
      throw new ConfigError(`${at('secrets')}[${i}]`, (err as Error).message);
    }
  });
  const backoffMs = positiveOr(expectDuration(init.backoffMs, at('backoffMs'), 0), d.backoffMs);
  const maxBackoffMs = expectDuration(init.maxBackoffMs, at('maxBackoffMs'), d.maxBackoffMs ?? backoffMs);
  if (maxBackoffMs < backoffMs) {
    throw new ConfigError(at('maxBackoffMs'), `must be at least backoff (${backoffMs}ms), got ${maxBackoffMs}ms`);
  }
  return {
    name,
    url,
    disabled: expectBoolean(init.disabled, at('disabled'), d.disabled),
    headers: normalizeHeaders(init.headers, at('headers')),
    timeoutMs: positiveOr(expectDuration(init.timeoutMs, at('timeoutMs'), 0), d.timeoutMs),
    threshold: positiveOr(expectInteger(init.threshold, at('threshold'), 0, 0), d.threshold),
    backoffMs,
    maxBackoffMs,
    jitter,
    ignoredMediaTypes: expectStrings(init.ignoredMediaTypes, at('ignoredMediaTypes')),
    ignore: normalizeRules(init.ignore, at('ignore'), names),
    include: normalizeRules(init.include, at('include'), names),
    format,
    secrets,
    maxRetries: expectInteger(init.maxRetries, at('maxRetries'), d.maxRetries, -1),
    maxEvents,
    maxBytes: expectInteger(init.maxBytes, at('maxBytes'), d.maxBytes, 0),
    lingerMs: expectDuration(init.lingerMs, at('lingerMs'), d.lingerMs),
    envelope,
    // GitLab treats zero as "the default"; here the default is the queue's setting.
    queueSizeLimit: positiveOrUnset(expectInteger(init.queueSizeLimit, at('queueSizeLimit'), 0, 0), d.queueSizeLimit),
    queuePurgeTimeoutMs: positiveOrUnset(expectDuration(init.queuePurgeTimeoutMs, at('queuePurgeTimeoutMs'), 0), d.queuePurgeTimeoutMs),
    ...normalizeBroker(init, scheme, format, secrets, at),
  };
}

/** The URL schemes of endpoints: HTTP webhooks and the brokers. */
export const ENDPOINT_SCHEMES = ['http', 'https', 'nats', 'amqp', 'amqps', 'mqtt', 'mqtts'];

type BrokerFields = Pick<EndpointConfig, 'subject' | 'stream' | 'createStream' | 'exchange' | 'routingKey' | 'topic' | 'qos' | 'mqttVersion'>;
const BROKER_FIELDS: Record<keyof BrokerFields, string> = {
  subject: 'nats', stream: 'nats', createStream: 'nats',
  exchange: 'amqp', routingKey: 'amqp',
  topic: 'mqtt', qos: 'mqtt', mqttVersion: 'mqtt',
};

/** A route template checked for the broker that spells routes so. */
function template(value: unknown, field: string, fallback: string, syntax: RouteSyntax): string {
  const t = expectString(value, field) ?? fallback;
  try {
    routeTemplate(t, syntax);
  } catch (err) {
    throw new ConfigError(field, (err as Error).message);
  }
  return t;
}

/**
 * The fields of a broker destination, defaults filled, for the broker the scheme names;
 * nothing for HTTP. A field of another broker's, signing secrets (Standard Webhooks signs
 * HTTP requests) and formats the broker's CloudEvents binding lacks are refused.
 */
function normalizeBroker(init: EndpointInit, scheme: string, format: PayloadFormat, secrets: string[], at: (key: string) => string): BrokerFields {
  const kind = scheme === 'https' ? 'http' : scheme === 'amqps' ? 'amqp' : scheme === 'mqtts' ? 'mqtt' : scheme;
  for (const key of Object.keys(BROKER_FIELDS) as (keyof BrokerFields)[]) {
    if (init[key] !== undefined && init[key] !== null && BROKER_FIELDS[key] !== kind) {
      throw new ConfigError(at(key), `only for ${BROKER_FIELDS[key]}:// endpoints; this one's URL is ${scheme}:`);
    }
  }
  if (kind === 'http') return {};
  if (secrets.length > 0) throw new ConfigError(at('secrets'), `Standard Webhooks signatures are for HTTP endpoints; a ${scheme}: endpoint publishes unsigned messages`);
  if (format === 'cloudevents-batch') {
    throw new ConfigError(at('format'), `the ${kind.toUpperCase()} binding of CloudEvents has no batch mode; use cloudevents or cloudevents-binary (one event per message)`);
  }
  const b = DEFAULTS.broker;
  switch (kind) {
    case 'nats': {
      const stream = expectString(init.stream, at('stream'));
      if (stream !== undefined && !/^[^\s.*>/\\]+$/.test(stream)) {
        throw new ConfigError(at('stream'), `a stream name cannot hold whitespace, ".", "*", ">", "/" or "\\", got ${JSON.stringify(stream)}`);
      }
      const createStream = expectBoolean(init.createStream, at('createStream'), b.createStream);
      if (createStream && !stream) throw new ConfigError(at('createStream'), 'names no stream to create: set stream too');
      return { subject: template(init.subject, at('subject'), b.subject, NATS_ROUTES), ...(stream ? { stream } : {}), createStream };
    }
    case 'amqp':
      return {
        exchange: expectString(init.exchange, at('exchange')) ?? b.exchange,
        routingKey: template(init.routingKey, at('routingKey'), b.routingKey, AMQP_ROUTES),
      };
    default: {
      const qos = init.qos ?? b.qos;
      if (qos !== 1 && qos !== 2) throw new ConfigError(at('qos'), `expected 1 or 2 (a broker acknowledges only these), got ${describeValue(qos)}`);
      const version = String(init.mqttVersion ?? b.mqttVersion);
      if (version !== '5' && version !== '3.1.1') throw new ConfigError(at('mqttVersion'), `expected 5 or 3.1.1, got ${describeValue(init.mqttVersion)}`);
      if (version === '3.1.1' && format === 'cloudevents-binary') {
        throw new ConfigError(at('format'), 'MQTT 3.1.1 carries no message properties, so no binary mode; use cloudevents (structured) or mqttversion 5');
      }
      return { topic: template(init.topic, at('topic'), b.topic, MQTT_ROUTES), qos, mqttVersion: version };
    }
  }
}

/** The one normaliser of `notifications.queue`; see `normalizeEndpoint`. */
export function normalizeQueue(init: QueueInit = {}, field = 'queue', names: FieldNames = 'code'): QueueConfig {
  const d = DEFAULTS.queue;
  const at = namer(field, names);
  const type = init.type ?? d.type;
  if (type !== 'memory' && type !== 'sqlite' && type !== 'redis') {
    throw new ConfigError(at('type'), `expected memory, sqlite or redis, got ${describeValue(type)}`);
  }
  const path = expectString(init.path, at('path'));
  const url = expectString(init.url, at('url'));
  if (type === 'sqlite' && !path) throw new ConfigError(at('path'), 'required when type is sqlite: the database file');
  if (type === 'redis') {
    if (!url) throw new ConfigError(at('url'), 'required when type is redis, e.g. redis://127.0.0.1:6379/0');
    if (!/^rediss?:\/\//.test(url)) throw new ConfigError(at('url'), `expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
    const db = new URL(url).pathname;
    if (db !== '' && !/^\/\d*$/.test(db)) {
      throw new ConfigError(at('url'), `the path names the database, a number such as /0, got ${JSON.stringify(db)} in ${JSON.stringify(url)}`);
    }
  }
  const onStoreError = init.onStoreError ?? d.onStoreError;
  if (onStoreError !== 'spool' && onStoreError !== 'fail') {
    throw new ConfigError(at('onStoreError'), `expected spool or fail, got ${describeValue(onStoreError)}`);
  }
  return {
    type,
    ...(path ? { path } : {}),
    ...(url ? { url } : {}),
    limit: expectInteger(init.limit, at('limit'), d.limit, 0),
    drainTimeoutMs: expectDuration(init.drainTimeoutMs, at('drainTimeoutMs'), d.drainTimeoutMs),
    prefix: expectString(init.prefix, at('prefix')) ?? d.prefix,
    claimIdleMs: expectDuration(init.claimIdleMs, at('claimIdleMs'), d.claimIdleMs),
    commitTimeoutMs: expectDuration(init.commitTimeoutMs, at('commitTimeoutMs'), d.commitTimeoutMs),
    spoolDir: expectString(init.spoolDir, at('spoolDir')) || d.spoolDir,
    onStoreError,
  };
}

/** The one normaliser of `notifications.log`; see `normalizeEndpoint`. */
export function normalizeLog(init: Loose<LogConfig> = {}, field = 'log', names: FieldNames = 'code'): LogConfig {
  const d = DEFAULTS.log;
  const at = namer(field, names);
  return {
    attempts: expectInteger(init.attempts, at('attempts'), d.attempts, 0),
    events: expectInteger(init.events, at('events'), d.events, 0),
    retentionMs: expectDuration(init.retentionMs, at('retentionMs'), d.retentionMs),
  };
}

/** The one normaliser of `notifications.feed`; it needs an event log (`log.events` > 0) to keep the feed in. */
export function normalizeFeed(init: Loose<FeedConfig> = {}, log: LogConfig, field = 'feed', names: FieldNames = 'code'): FeedConfig {
  const at = namer(field, names);
  const enabled = expectBoolean(init.enabled, at('enabled'), DEFAULTS.feed.enabled);
  if (enabled && log.events === 0) {
    throw new ConfigError(at('enabled'), 'the feed is kept in the event log, which log.events: 0 turns off; give log.events a bound above 0');
  }
  return { enabled };
}

/** Rules that match nothing: the default `ignore` and `include`. */
export function emptyRules(): EventRules {
  return normalizeRules(undefined, 'rules', 'code');
}
