import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS } from './defaults';
import {
  normalizeEndpoint,
  normalizeQueue,
  normalizeLog,
  normalizeFeed,
  type FeedConfig,
  type LogConfig,
  type EndpointConfig,
  type EventRules,
  type NotificationsConfig,
  type QueueConfig,
} from './normalize';
import { ConfigError, describeValue, expectBoolean, expectMapping, parseDuration } from './values';
import { parseWithEnvOverrides } from './env-overrides';

const parsedConfigs = new WeakSet<object>();

/** Whether a value came out of `parseNotificationsConfig` (so it need not be parsed again). */
export function isParsedConfig(value: unknown): value is NotificationsConfig {
  return typeof value === 'object' && value !== null && parsedConfigs.has(value);
}

const ENDPOINT_FIELDS = [
  'name', 'disabled', 'url', 'headers', 'timeout', 'threshold', 'backoff', 'ignoredmediatypes', 'ignore',
  'maxretries', 'maxevents', 'maxbytes', 'linger', 'envelope', 'include', 'maxbackoff', 'jitter', 'format', 'secrets',
  'queuesizelimit', 'queuepurgetimeout', // GitLab's container registry
  'subject', 'stream', 'createstream', 'exchange', 'routingkey', 'topic', 'qos', 'mqttversion', // broker destinations
] as const;
const RULE_FIELDS = ['mediatypes', 'actions', 'repositories', 'tags', 'kinds', 'topics'] as const;
const QUEUE_FIELDS = ['type', 'path', 'url', 'limit', 'draintimeout', 'prefix', 'claimidle', 'committimeout', 'spooldir', 'onstoreerror'] as const;

/** A Go duration as YAML gives it, in ms; undefined when absent (the normaliser fills the default). */
function yamlDuration(value: unknown, field: string): number | undefined {
  return value === undefined || value === null ? undefined : parseDuration(value, field);
}

function yamlRules(value: unknown, field: string): Partial<EventRules> {
  const raw = expectMapping(value, field, RULE_FIELDS);
  return {
    mediaTypes: raw.mediatypes as string[],
    actions: raw.actions as string[],
    repositories: raw.repositories as string[],
    tags: raw.tags as string[],
    kinds: raw.kinds as EventRules['kinds'],
    topics: raw.topics as string[],
  };
}

/** Distribution's field names and text forms (durations) in, the normaliser's fields out. */
function yamlEndpoint(value: unknown, field: string): EndpointConfig {
  const raw = expectMapping(value, field, ENDPOINT_FIELDS);
  return normalizeEndpoint(
    {
      name: raw.name as string,
      url: raw.url as string,
      disabled: raw.disabled as boolean,
      headers: raw.headers as Record<string, string[]>,
      timeoutMs: yamlDuration(raw.timeout, `${field}.timeout`),
      threshold: raw.threshold as number,
      backoffMs: yamlDuration(raw.backoff, `${field}.backoff`),
      maxBackoffMs: yamlDuration(raw.maxbackoff, `${field}.maxbackoff`),
      jitter: raw.jitter as number,
      ignoredMediaTypes: raw.ignoredmediatypes as string[],
      ignore: yamlRules(raw.ignore, `${field}.ignore`),
      include: yamlRules(raw.include, `${field}.include`),
      format: raw.format as EndpointConfig['format'],
      secrets: raw.secrets as string[],
      maxRetries: raw.maxretries as number,
      maxEvents: raw.maxevents as number,
      maxBytes: raw.maxbytes as number,
      lingerMs: yamlDuration(raw.linger, `${field}.linger`),
      envelope: raw.envelope as EndpointConfig['envelope'],
      queueSizeLimit: raw.queuesizelimit as number,
      queuePurgeTimeoutMs: yamlDuration(raw.queuepurgetimeout, `${field}.queuepurgetimeout`),
      subject: raw.subject as string,
      stream: raw.stream as string,
      createStream: raw.createstream as boolean,
      exchange: raw.exchange as string,
      routingKey: raw.routingkey as string,
      topic: raw.topic as string,
      qos: raw.qos as EndpointConfig['qos'],
      // YAML reads `5` as a number and `3.1.1` as a string.
      mqttVersion: (raw.mqttversion === undefined || raw.mqttversion === null ? undefined : String(raw.mqttversion)) as EndpointConfig['mqttVersion'],
    },
    field,
    'yaml',
  );
}

const LOG_FIELDS = ['attempts', 'events', 'retention'] as const;
const FEED_FIELDS = ['enabled'] as const;

function yamlFeed(value: unknown, log: LogConfig, field: string): FeedConfig {
  const raw = expectMapping(value, field, FEED_FIELDS);
  return normalizeFeed({ enabled: raw.enabled as boolean }, log, field, 'yaml');
}

function yamlLog(value: unknown, field: string): LogConfig {
  const raw = expectMapping(value, field, LOG_FIELDS);
  return normalizeLog(
    { attempts: raw.attempts as number, events: raw.events as number, retentionMs: yamlDuration(raw.retention, `${field}.retention`) },
    field,
    'yaml',
  );
}

function yamlQueue(value: unknown, field: string): QueueConfig {
  const raw = expectMapping(value, field, QUEUE_FIELDS);
  return normalizeQueue(
    {
      type: raw.type as QueueConfig['type'],
      path: raw.path as string,
      url: raw.url as string,
      limit: raw.limit as number,
      drainTimeoutMs: yamlDuration(raw.draintimeout, `${field}.draintimeout`),
      prefix: raw.prefix as string,
      claimIdleMs: yamlDuration(raw.claimidle, `${field}.claimidle`),
      commitTimeoutMs: yamlDuration(raw.committimeout, `${field}.committimeout`),
      spoolDir: raw.spooldir as string,
      onStoreError: raw.onstoreerror as QueueConfig['onStoreError'],
    },
    field,
    'yaml',
  );
}

/**
 * The one loader for the `notifications:` section: takes the value as YAML parsed it
 * (Distribution's field names) and returns it normalized, every default filled in.
 * Throws `ConfigError` naming the field, the value and what is allowed.
 *
 * With `{ env }`, the `REGISTRY_NOTIFICATIONS_*` variables in it override fields first
 * (`REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL=…`), and an error about a field one of them
 * set names the variable too. A value that already came out of this function is
 * returned as it is, environment or not.
 */
export function parseNotificationsConfig(value: unknown, field = 'notifications', options: LoadOptions = {}): NotificationsConfig {
  if (isParsedConfig(value)) return value;
  if (!options.env) return parseSection(value, field);
  return parseWithEnvOverrides(value, options.env, (doc) => parseSection(doc, field), `${ENV_PREFIX}_NOTIFICATIONS`, field);
}

/** Where the loader reads configuration from besides the value or file it is given. */
export interface LoadOptions {
  /**
   * Environment variables, e.g. `process.env`: each `REGISTRY_NOTIFICATIONS_<PATH>`
   * overrides the field at that path, as Distribution reads its environment (see
   * `applyEnvOverrides`). Absent: nothing is read from the environment.
   */
  env?: Record<string, string | undefined>;
}

/** Distribution's prefix of environment overrides. */
const ENV_PREFIX = 'REGISTRY';

function parseSection(value: unknown, field: string): NotificationsConfig {
  // fanouttimeout is GitLab's: how long its broadcaster's own buffer is emptied into the
  // endpoints' queues at shutdown. Here events reach each queue as they are written, so
  // it bounds nothing; it is accepted (when a valid duration) so a GitLab config loads.
  const raw = expectMapping(value, field, ['events', 'endpoints', 'queue', 'log', 'feed', 'fanouttimeout']);
  yamlDuration(raw.fanouttimeout, `${field}.fanouttimeout`);
  const events = expectMapping(raw.events, `${field}.events`, ['includereferences']);
  if (raw.endpoints !== undefined && raw.endpoints !== null && !Array.isArray(raw.endpoints)) {
    throw new ConfigError(`${field}.endpoints`, `expected a list of endpoints, got ${describeValue(raw.endpoints)}`);
  }
  const endpoints = ((raw.endpoints as unknown[] | undefined) ?? []).map((e, i) => yamlEndpoint(e, `${field}.endpoints[${i}]`));
  const seen = new Set<string>();
  endpoints.forEach((e, i) => {
    if (seen.has(e.name)) throw new ConfigError(`${field}.endpoints[${i}].name`, `duplicate endpoint name ${JSON.stringify(e.name)}`);
    seen.add(e.name);
  });
  const log = yamlLog(raw.log, `${field}.log`);
  const config: NotificationsConfig = {
    includeReferences: expectBoolean(events.includereferences, `${field}.events.includereferences`, DEFAULTS.notifications.includeReferences),
    queue: yamlQueue(raw.queue, `${field}.queue`),
    log,
    feed: yamlFeed(raw.feed, log, `${field}.feed`),
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

/**
 * Reads a Distribution config.yml and returns its `notifications:` section, parsed; with
 * `{ env: process.env }`, `REGISTRY_NOTIFICATIONS_*` variables override its fields.
 */
export function loadNotificationsConfig(file: string, options: LoadOptions = {}): NotificationsConfig {
  const doc = readConfigFile(file);
  const notifications = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).notifications : undefined;
  return parseNotificationsConfig(notifications, 'notifications', options);
}
