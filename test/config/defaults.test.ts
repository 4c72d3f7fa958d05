import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULTS, parseNotificationsConfig } from '../../lib';
import { normalizeEndpoint, normalizeQueue, type EndpointInit } from '../../lib/config/normalize';
import { Endpoint } from '../../lib/deliver/endpoint';

const README = readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');

/** The README's default for a field: the first `code` in the second cell of its table row. */
function readmeDefault(field: string): string | undefined {
  const escaped = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const row = new RegExp(`^\\| \`${escaped}\` \\| ([^|]*)\\|`, 'm').exec(README);
  return row ? /`([^`]*)`/.exec(row[1])?.[1] : undefined;
}

/** A value as the README writes it: durations in Go's notation. */
function shown(value: unknown, duration: boolean): string {
  if (!duration || typeof value !== 'number') return String(value);
  for (const [unit, ms] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (value > 0 && value % ms === 0) return `${value / ms}${unit}`;
  }
  return value === 0 ? '0' : `${value}ms`;
}

// README field -> the path of its default in DEFAULTS, and whether it is a duration.
const DOCUMENTED: [field: string, defaultPath: string, duration: boolean][] = [
  ['events.includereferences', 'notifications.includeReferences', false],
  ['queue.type', 'queue.type', false],
  ['queue.limit', 'queue.limit', false],
  ['queue.draintimeout', 'queue.drainTimeoutMs', true],
  ['queue.prefix', 'queue.prefix', false],
  ['queue.committimeout', 'queue.commitTimeoutMs', true],
  ['queue.claimidle', 'queue.claimIdleMs', true],
  ['queue.spooldir', 'queue.spoolDir', false],
  ['queue.onstoreerror', 'queue.onStoreError', false],
  ['endpoints[].disabled', 'endpoint.disabled', false],
  ['endpoints[].timeout', 'endpoint.timeoutMs', true],
  ['endpoints[].threshold', 'endpoint.threshold', false],
  ['endpoints[].backoff', 'endpoint.backoffMs', true],
  ['endpoints[].maxbackoff', 'endpoint.maxBackoffMs', false],
  ['endpoints[].jitter', 'endpoint.jitter', false],
  ['endpoints[].maxretries', 'endpoint.maxRetries', false],
  ['endpoints[].maxevents', 'endpoint.maxEvents', false],
  ['endpoints[].maxbytes', 'endpoint.maxBytes', false],
  ['endpoints[].linger', 'endpoint.lingerMs', true],
  ['endpoints[].envelope', 'endpoint.envelope', false],
  ['endpoints[].format', 'endpoint.format', false],
  ['endpoints[].queuesizelimit', 'endpoint.queueSizeLimit', false],
  ['endpoints[].queuepurgetimeout', 'endpoint.queuePurgeTimeoutMs', false],
  ['limit', 'receiver.limit', false],
  ['toleranceSec', 'receiver.toleranceSec', false],
  ['deduplicator.windowMs', 'deduplicator.windowMs', false],
  ['feed.enabled', 'feed.enabled', false],
];

/** Defaults that are none of their own: they follow another field, as the README says. */
const FOLLOWS: Record<string, string> = {
  'endpoint.maxBackoffMs': 'backoff',
  'endpoint.queueSizeLimit': 'queue.limit',
  'endpoint.queuePurgeTimeoutMs': 'queue.draintimeout',
};

/** A default by its path, or the field it follows. */
function defaultAt(dotted: string): unknown {
  const value = dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DEFAULTS);
  return value === undefined && dotted in FOLLOWS ? FOLLOWS[dotted] : value;
}

describe('DEFAULTS is the one place for defaults', () => {
  test.each(DOCUMENTED)("the README's table gives %s the default in DEFAULTS (%s)", (field, defaultPath, duration) => {
    expect(readmeDefault(field)).toBe(shown(defaultAt(defaultPath), duration));
  });

  it('every configuration default is in a README table', () => {
    const documented = new Set(DOCUMENTED.map(([, p]) => p));
    const sections = ['notifications', 'endpoint', 'queue', 'receiver'] as const;
    // prefetch is a Queue tuning of the pipeline tier, documented with the Queue class.
    const missing = sections
      .flatMap((section) => Object.keys(DEFAULTS[section]).map((key) => `${section}.${key}`))
      .filter((p) => p !== 'queue.prefetch' && !documented.has(p));
    expect(missing).toEqual([]);
  });

  it('YAML, code options and new Endpoint() fill the same defaults', () => {
    const fromYaml = parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://h/' }] }).endpoints[0];
    const fromCode = normalizeEndpoint({ name: 'a', url: 'http://h/' });
    const endpoint = new Endpoint({ name: 'a', url: 'http://h/' });
    expect(fromCode).toEqual(fromYaml);
    expect(endpoint.config).toEqual(fromYaml);
    void endpoint.close();
    expect(fromYaml).toMatchObject({
      timeoutMs: DEFAULTS.endpoint.timeoutMs,
      threshold: DEFAULTS.endpoint.threshold,
      backoffMs: DEFAULTS.endpoint.backoffMs,
      maxBackoffMs: DEFAULTS.endpoint.backoffMs,
      maxEvents: DEFAULTS.endpoint.maxEvents,
      format: DEFAULTS.endpoint.format,
    });
  });

  it('the default maxevents depends on the format: one for the single-event CloudEvents formats, whichever way it comes', () => {
    for (const format of ['cloudevents', 'cloudevents-binary'] as const) {
      expect(normalizeEndpoint({ name: 'a', url: 'http://h/', format }).maxEvents).toBe(1);
      expect(normalizeEndpoint({ name: 'a', url: 'http://h/', format, maxEvents: undefined }).maxEvents).toBe(1);
      expect(parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://h/', format }] }).endpoints[0].maxEvents).toBe(1);
      expect(() => normalizeEndpoint({ name: 'a', url: 'http://h/', format, maxEvents: 2 })).toThrow(/maxEvents: .* carries one event per request/);
    }
    expect(normalizeEndpoint({ name: 'a', url: 'http://h/', format: 'cloudevents-batch' }).maxEvents).toBe(DEFAULTS.endpoint.maxEvents);
    expect(normalizeEndpoint({ name: 'a', url: 'http://h/' })).toMatchObject({ maxEvents: 250, maxBytes: 256 * 1024 });
  });

  it('an explicit undefined never removes a default', async () => {
    const everyFieldUndefined: EndpointInit = { name: 'a', url: 'http://h/' };
    for (const key of [...Object.keys(DEFAULTS.endpoint), 'headers', 'ignore', 'include', 'secrets', 'ignoredMediaTypes']) {
      (everyFieldUndefined as unknown as Record<string, unknown>)[key] = undefined;
    }
    const endpoint = new Endpoint(everyFieldUndefined);
    expect(endpoint.config).toEqual(normalizeEndpoint({ name: 'a', url: 'http://h/' }));
    expect(endpoint.config.timeoutMs).toBe(1000);
    await endpoint.close();
    expect(normalizeQueue({ drainTimeoutMs: undefined, type: undefined })).toEqual(normalizeQueue({}));
  });

  it('code options are checked like YAML: a NaN jitter or an overflowing backoff is refused', () => {
    expect(() => new Endpoint({ name: 'a', url: 'http://h/', jitter: NaN })).toThrow(/jitter: expected a fraction from 0 to 1, got number NaN/);
    expect(() => normalizeEndpoint({ name: 'a', url: 'http://h/', backoffMs: 2 ** 31 })).toThrow(/backoffMs: 2147483648ms is longer than the longest wait a timer keeps/);
    expect(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://h/', backoff: '600h' }] })).toThrow(
      /notifications\.endpoints\[0\]\.backoff: 2160000000ms is longer/,
    );
  });

  it('header values HTTP cannot carry are refused where they are configured, as the HTTP sink refuses them', () => {
    expect(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://h/', headers: { 'X-Token': ['t\r\nX-Injected: 1'] } }] })).toThrow(
      'notifications.endpoints[0].headers.X-Token[0]: a header value must not contain CR: an HTTP header cannot carry it',
    );
    expect(() => normalizeEndpoint({ name: 'a', url: 'http://h/', headers: { 'X-Token': ['t\u0001'] } })).toThrow(
      'endpoint.headers.X-Token[0]: a header value must not contain U+0001: an HTTP header cannot carry it',
    );
    expect(normalizeEndpoint({ name: 'a', url: 'http://h/', headers: { 'X-Note': ['a\tb', 'caf\u00e9'] } }).headers).toEqual({ 'X-Note': ['a\tb', 'caf\u00e9'] });
  });

  it('DEFAULTS cannot be changed by accident', () => {
    expect(() => {
      (DEFAULTS.endpoint as { timeoutMs: number }).timeoutMs = 5;
    }).toThrow(TypeError);
  });
});
