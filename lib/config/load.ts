import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { EVENT_KINDS, type EventKind } from '../codec/cloudevents';
import { EVENT_ACTIONS, type EnvelopeVersion } from '../model/event';
import { PAYLOAD_FORMATS, type PayloadFormat } from '../codec/payload';
import { secretKey } from '../codec/signing';

/** A configuration value that is missing, of the wrong type or out of range. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** Dotted path of the field, e.g. `notifications.endpoints[0].timeout`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export type QueueType = 'memory' | 'sqlite' | 'redis';

/** Where each endpoint keeps its pending events (`notifications.queue`). */
export interface QueueConfig {
  /** @default 'memory' */
  type: QueueType;
  /** SQLite file (`path`); required for `sqlite`. */
  path?: string;
  /** Redis URL (`url`); required for `redis`. */
  url?: string;
  /** Most events held per endpoint by the `memory` store; 0 is no limit (`limit`). @default 0 */
  limit: number;
  /** On shutdown, how long to keep delivering before leaving events in the store (`draintimeout`). @default 2000 (2s) */
  drainTimeoutMs: number;
  /** `redis`: prefix of every key (`prefix`), so several registries can share a server. @default 'regnotify' */
  prefix: string;
  /**
   * `redis`: how long the events a replica took stay with it once it stops touching them
   * (a live replica touches them every third of this); then another replica takes them
   * over (`claimidle`). @default 60000 (1m)
   */
  claimIdleMs: number;
  /**
   * How long a successful response waits, at most, for the store to hold the events of
   * its request (`committimeout`); past it the response goes out and the write goes on.
   * The memory and SQLite stores commit at once; Redis takes a round trip. @default 250
   */
  commitTimeoutMs: number;
}

/** One webhook endpoint (`notifications.endpoints[]`), with every default filled in. */
export interface EndpointConfig {
  name: string;
  url: string;
  /** @default false */
  disabled: boolean;
  /** Static headers, a list of values per name. @default {} */
  headers: Record<string, string[]>;
  /** @default 1000 (1s) */
  timeoutMs: number;
  /** Consecutive failures before the breaker opens. @default 10 */
  threshold: number;
  /** How long an open breaker waits between attempts. @default 1000 (1s) */
  backoffMs: number;
  /** Legacy list of target media types to ignore. @default [] */
  ignoredMediaTypes: string[];
  /** Events matching any list are not sent (`ignore`). @default every list empty */
  ignore: EventRules;
  /** When a list is given, only events matching it are sent (`include`). @default every list empty */
  include: EventRules;
  /** Most wait between attempts; the wait doubles per failed probe up to here. @default backoff (Distribution's fixed wait) */
  maxBackoffMs: number;
  /** Fraction of each wait drawn at random, 0 to 1. @default 0 */
  jitter: number;
  /** Body format. @default 'distribution' */
  format: PayloadFormat;
  /** Standard Webhooks secrets; each request is signed with every one (rotation). @default [] */
  secrets: string[];
  /** Failed attempts after the first before an event is dead-lettered; -1 retries forever. @default -1 */
  maxRetries: number;
  /** Most events in one envelope. @default 1 (Distribution sends one) */
  maxEvents: number;
  /** How long to wait for a fuller envelope when `maxEvents` > 1. @default 0 */
  lingerMs: number;
  /** Envelope media type generation: v1 (Distribution 2.x) or v2 (3.x). @default 'v1' */
  envelope: EnvelopeVersion;
}

/** Lists of `ignore` and `include`: media types and actions (Distribution's), repositories and tags (globs), kinds. */
export interface EventRules {
  mediaTypes: string[];
  actions: string[];
  repositories: string[];
  tags: string[];
  kinds: EventKind[];
}


/** The `notifications:` section of a Distribution config.yml, normalized. */
export interface NotificationsConfig {
  /** `events.includereferences`. @default false */
  includeReferences: boolean;
  queue: QueueConfig;
  endpoints: EndpointConfig[];
}

/** Every default in one place. */
export const DEFAULT_ENDPOINT = {
  disabled: false,
  timeoutMs: 1000, // 1s, as Distribution
  threshold: 10,
  backoffMs: 1000, // 1s, as Distribution
  maxRetries: -1, // forever, as Distribution
  maxEvents: 1,
  lingerMs: 0,
  envelope: 'v1' as EnvelopeVersion,
  jitter: 0,
  format: 'distribution' as PayloadFormat,
} as const;

/** Rules that match nothing: the default `ignore` and `include`. */
export function emptyRules(): EventRules {
  return { mediaTypes: [], actions: [], repositories: [], tags: [], kinds: [] };
}

export const DEFAULT_QUEUE: QueueConfig = {
  type: 'memory',
  limit: 0,
  drainTimeoutMs: 2000, // 2s
  prefix: 'regnotify',
  claimIdleMs: 60_000, // 1m
  commitTimeoutMs: 250, // 250ms
};

const parsedConfigs = new WeakSet<object>();

/** Whether a value came out of `parseNotificationsConfig` (so it need not be parsed again). */
export function isParsedConfig(value: unknown): value is NotificationsConfig {
  return typeof value === 'object' && value !== null && parsedConfigs.has(value);
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go duration (`500ms`, `1s`, `2m`, `1h30m`, `1.5s`) into ms. A bare number is
 * nanoseconds, as Distribution's YAML reads an integer duration.
 */
export function parseDuration(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value / 1e6;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '0') return 0;
    const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
    let total = 0;
    let matched = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      total += Number(m[1]) * UNITS[m[2]];
      matched = re.lastIndex;
    }
    if (matched > 0 && matched === text.length) return total;
  }
  throw new ConfigError(
    field,
    `invalid duration ${JSON.stringify(value)}; use a number with a unit such as 500ms, 1s, 2m or 1h30m`,
  );
}

type Raw = Record<string, unknown>;

/**
 * A mapping whose keys must all be in `allowed`; `{}` when absent, unless `required`.
 * Shared by every loader of a config.yml section, so all report mistakes alike.
 */
export function expectMapping(value: unknown, field: string, allowed: readonly string[], required = false): Raw {
  if (value === undefined || value === null) {
    if (required) throw new ConfigError(field, `required; a mapping with ${allowed.join(', ')}`);
    return {};
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(field, `expected a mapping, got ${describeValue(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(`${field}.${key}`, `unknown field; allowed here: ${allowed.join(', ')}`);
    }
  }
  return value as Raw;
}

/** A value as error messages show it: its type and JSON. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `a list (${JSON.stringify(value)})`;
  return `${value === null ? 'null' : typeof value} ${JSON.stringify(value)}`;
}

/** A boolean, or `fallback` when absent. */
export function expectBoolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, `expected true or false, got ${describeValue(value)}`);
  return value;
}

function int(value: unknown, field: string, fallback: number, min: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(field, `expected a whole number of at least ${min}, got ${describeValue(value)}`);
  }
  return value;
}

/** A non-empty string; undefined when absent, unless `required`. */
export function expectString(value: unknown, field: string, required = false): string | undefined {
  if (value === undefined || value === null) {
    if (required) throw new ConfigError(field, 'required: a non-empty string');
    return undefined;
  }
  if (typeof value !== 'string' || value === '') throw new ConfigError(field, `expected a non-empty string, got ${describeValue(value)}`);
  return value;
}

function strings(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError(field, `expected a list of strings, got ${describeValue(value)}`);
  return value.map((v, i) => {
    if (typeof v !== 'string') throw new ConfigError(`${field}[${i}]`, `expected a string, got ${describeValue(v)}`);
    return v;
  });
}

function duration(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  return parseDuration(value, field);
}

function headers(value: unknown, field: string): Record<string, string[]> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(field, `expected a mapping of header names to lists of values, got ${describeValue(value)}`);
  }
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(value as Raw)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new ConfigError(`${field}.${name}`, 'not a valid HTTP header name');
    }
    // Distribution writes each header as a list; a single string is accepted too.
    out[name] = typeof values === 'string' ? [values] : strings(values, `${field}.${name}`);
  }
  return out;
}

const ENDPOINT_FIELDS = [
  'name', 'disabled', 'url', 'headers', 'timeout', 'threshold', 'backoff', 'ignoredmediatypes', 'ignore',
  'maxretries', 'maxevents', 'linger', 'envelope', 'include', 'maxbackoff', 'jitter', 'format', 'secrets',
] as const;

function rules(value: unknown, field: string): EventRules {
  const raw = expectMapping(value, field, ['mediatypes', 'actions', 'repositories', 'tags', 'kinds']);
  const oneOf = <T extends string>(list: string[], allowed: readonly T[], what: string, sub: string): T[] => {
    list.forEach((v, i) => {
      if (!(allowed as readonly string[]).includes(v)) {
        throw new ConfigError(`${field}.${sub}[${i}]`, `unknown ${what} ${JSON.stringify(v)}; allowed: ${allowed.join(', ')}`);
      }
    });
    return list as T[];
  };
  return {
    mediaTypes: strings(raw.mediatypes, `${field}.mediatypes`),
    actions: oneOf(strings(raw.actions, `${field}.actions`), EVENT_ACTIONS, 'action', 'actions'),
    repositories: strings(raw.repositories, `${field}.repositories`),
    tags: strings(raw.tags, `${field}.tags`),
    kinds: oneOf(strings(raw.kinds, `${field}.kinds`), EVENT_KINDS, 'kind', 'kinds'),
  };
}

function endpoint(value: unknown, field: string): EndpointConfig {
  const raw = expectMapping(value, field, ENDPOINT_FIELDS);
  const name = expectString(raw.name, `${field}.name`);
  if (!name) throw new ConfigError(`${field}.name`, 'required: every endpoint needs a name');
  const url = expectString(raw.url, `${field}.url`);
  if (!url) throw new ConfigError(`${field}.url`, 'required: the URL events are POSTed to');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${field}.url`, `invalid URL ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${field}.url`, `unsupported scheme ${JSON.stringify(parsed.protocol)}; use http: or https:`);
  }
  const envelope = raw.envelope ?? DEFAULT_ENDPOINT.envelope;
  if (envelope !== 'v1' && envelope !== 'v2') {
    throw new ConfigError(`${field}.envelope`, `expected v1 or v2, got ${describeValue(envelope)}`);
  }
  const format = raw.format ?? DEFAULT_ENDPOINT.format;
  if (!(PAYLOAD_FORMATS as readonly unknown[]).includes(format)) {
    throw new ConfigError(`${field}.format`, `expected one of ${PAYLOAD_FORMATS.join(', ')}, got ${describeValue(format)}`);
  }
  const maxEvents = int(raw.maxevents, `${field}.maxevents`, DEFAULT_ENDPOINT.maxEvents, 1);
  if (maxEvents > 1 && (format === 'cloudevents' || format === 'cloudevents-binary')) {
    throw new ConfigError(`${field}.maxevents`, `${format} carries one event per request; use format cloudevents-batch or distribution to send ${maxEvents}`);
  }
  const jitter = raw.jitter ?? DEFAULT_ENDPOINT.jitter;
  if (typeof jitter !== 'number' || jitter < 0 || jitter > 1) {
    throw new ConfigError(`${field}.jitter`, `expected a fraction from 0 to 1, got ${describeValue(jitter)}`);
  }
  const secrets = strings(raw.secrets, `${field}.secrets`);
  secrets.forEach((secret, i) => {
    try {
      secretKey(secret);
    } catch (err) {
      throw new ConfigError(`${field}.secrets[${i}]`, (err as Error).message);
    }
  });
  // Distribution treats zero or negative timeout, threshold and backoff as "use the default".
  const positive = (n: number, fallback: number) => (n > 0 ? n : fallback);
  const backoffMs = positive(duration(raw.backoff, `${field}.backoff`, 0), DEFAULT_ENDPOINT.backoffMs);
  const maxBackoffMs = duration(raw.maxbackoff, `${field}.maxbackoff`, backoffMs);
  if (maxBackoffMs < backoffMs) {
    throw new ConfigError(`${field}.maxbackoff`, `must be at least backoff (${backoffMs}ms), got ${maxBackoffMs}ms`);
  }
  return {
    name,
    url,
    disabled: expectBoolean(raw.disabled, `${field}.disabled`, DEFAULT_ENDPOINT.disabled),
    headers: headers(raw.headers, `${field}.headers`),
    timeoutMs: positive(duration(raw.timeout, `${field}.timeout`, 0), DEFAULT_ENDPOINT.timeoutMs),
    threshold: positive(int(raw.threshold, `${field}.threshold`, 0, 0), DEFAULT_ENDPOINT.threshold),
    backoffMs,
    ignoredMediaTypes: strings(raw.ignoredmediatypes, `${field}.ignoredmediatypes`),
    ignore: rules(raw.ignore, `${field}.ignore`),
    include: rules(raw.include, `${field}.include`),
    maxRetries: int(raw.maxretries, `${field}.maxretries`, DEFAULT_ENDPOINT.maxRetries, -1),
    maxEvents,
    lingerMs: duration(raw.linger, `${field}.linger`, DEFAULT_ENDPOINT.lingerMs),
    envelope,
    maxBackoffMs,
    jitter,
    format: format as PayloadFormat,
    secrets,
  };
}

function queue(value: unknown, field: string): QueueConfig {
  const raw = expectMapping(value, field, ['type', 'path', 'url', 'limit', 'draintimeout', 'prefix', 'claimidle', 'committimeout']);
  const type = raw.type ?? DEFAULT_QUEUE.type;
  if (type !== 'memory' && type !== 'sqlite' && type !== 'redis') {
    throw new ConfigError(`${field}.type`, `expected memory, sqlite or redis, got ${describeValue(type)}`);
  }
  const path = expectString(raw.path, `${field}.path`);
  const url = expectString(raw.url, `${field}.url`);
  if (type === 'sqlite' && !path) throw new ConfigError(`${field}.path`, 'required when type is sqlite: the database file');
  if (type === 'redis') {
    if (!url) throw new ConfigError(`${field}.url`, 'required when type is redis, e.g. redis://127.0.0.1:6379/0');
    if (!/^rediss?:\/\//.test(url)) throw new ConfigError(`${field}.url`, `expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  return {
    type,
    ...(path ? { path } : {}),
    ...(url ? { url } : {}),
    limit: int(raw.limit, `${field}.limit`, DEFAULT_QUEUE.limit, 0),
    drainTimeoutMs: duration(raw.draintimeout, `${field}.draintimeout`, DEFAULT_QUEUE.drainTimeoutMs),
    prefix: expectString(raw.prefix, `${field}.prefix`) ?? DEFAULT_QUEUE.prefix,
    claimIdleMs: duration(raw.claimidle, `${field}.claimidle`, DEFAULT_QUEUE.claimIdleMs),
    commitTimeoutMs: duration(raw.committimeout, `${field}.committimeout`, DEFAULT_QUEUE.commitTimeoutMs),
  };
}

/**
 * The one loader for the `notifications:` section: takes the value as YAML parsed it
 * (Distribution's field names) and returns it normalized, every default filled in.
 * Throws `ConfigError` naming the field, the value and what is allowed.
 */
export function parseNotificationsConfig(value: unknown, field = 'notifications'): NotificationsConfig {
  if (isParsedConfig(value)) return value;
  const raw = expectMapping(value, field, ['events', 'endpoints', 'queue']);
  const events = expectMapping(raw.events, `${field}.events`, ['includereferences']);
  if (raw.endpoints !== undefined && raw.endpoints !== null && !Array.isArray(raw.endpoints)) {
    throw new ConfigError(`${field}.endpoints`, `expected a list of endpoints, got ${describeValue(raw.endpoints)}`);
  }
  const endpoints = ((raw.endpoints as unknown[] | undefined) ?? []).map((e, i) => endpoint(e, `${field}.endpoints[${i}]`));
  const seen = new Set<string>();
  endpoints.forEach((e, i) => {
    if (seen.has(e.name)) throw new ConfigError(`${field}.endpoints[${i}].name`, `duplicate endpoint name ${JSON.stringify(e.name)}`);
    seen.add(e.name);
  });
  const config: NotificationsConfig = {
    includeReferences: expectBoolean(events.includereferences, `${field}.events.includereferences`, false),
    queue: queue(raw.queue, `${field}.queue`),
    endpoints,
  };
  parsedConfigs.add(config);
  return config;
}

/** Reads a YAML configuration file; ConfigError naming the file when it cannot be read or parsed. */
export function readConfigFile(file: string): unknown {
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, `cannot read configuration: ${(err as Error).message}`);
  }
}

/** Reads a Distribution config.yml and returns its `notifications:` section, parsed. */
export function loadNotificationsConfig(file: string): NotificationsConfig {
  const doc = readConfigFile(file);
  const notifications = typeof doc === 'object' && doc !== null ? (doc as Raw).notifications : undefined;
  return parseNotificationsConfig(notifications);
}
