// A Distribution (or GitLab container registry) operator's drop-in: environment
// overrides through the loader, GitLab's notification fields, and the nearest field
// named when one is misspelt.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createNotifications, DEFAULTS, loadNotificationsConfig, parseNotificationsConfig } from '../../lib';
import { normalizeEndpoint } from '../../lib/config/normalize';
import { nearestName } from '../../lib/config/values';
import { configFailure } from '../helpers/config-failure';
import { makeEvents } from '../helpers/events';

function configFile(lines: string[]): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'cfg-env-')), 'config.yml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

function messageOf(fn: () => unknown): string {
  return configFailure(fn).message;
}

describe('the loader and REGISTRY_NOTIFICATIONS_* variables', () => {
  const file = () =>
    configFile([
      'version: 0.1',
      'notifications:',
      '  endpoints:',
      '    - name: scanner',
      '      url: http://127.0.0.1:5001/',
      '      headers:',
      '        Authorization: [Bearer file]',
      '      timeout: 500ms',
    ]);

  it('reads nothing from the environment unless given { env }', () => {
    const names = ['REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT', 'REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME'];
    process.env[names[0]] = '3s';
    process.env[names[1]] = 'no-url'; // would be refused if it were read
    try {
      const f = file();
      expect(loadNotificationsConfig(f).endpoints).toEqual([expect.objectContaining({ name: 'scanner', timeoutMs: 500 })]);
      expect(parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/' }] }).endpoints[0].timeoutMs).toBe(1000);
      expect(() => loadNotificationsConfig(f, { env: process.env })).toThrow(
        'notifications.endpoints[1].url: required: the URL events are POSTed to (added by REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME)',
      );
    } finally {
      for (const n of names) delete process.env[n];
    }
  });

  it('overrides fields of the file with { env }, checked like the file', () => {
    const c = loadNotificationsConfig(file(), {
      env: {
        REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES: 'true',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '2s',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_THRESHOLD: '3',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION: 'Bearer env',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_IGNORE_ACTIONS: '[pull]',
        REGISTRY_NOTIFICATIONS_QUEUE_LIMIT: '1000',
        REGISTRY_HTTP_ADDR: ':6000', // not the loader's: the section is all it reads
      },
    });
    expect(c.includeReferences).toBe(true);
    expect(c.queue.limit).toBe(1000);
    expect(c.endpoints[0]).toMatchObject({
      name: 'scanner',
      url: 'http://127.0.0.1:5001/',
      timeoutMs: 2000,
      threshold: 3,
      headers: { Authorization: ['Bearer env'] },
      ignore: { actions: ['pull'] },
    });
  });

  it('configures endpoints with no file at all', () => {
    const c = parseNotificationsConfig(undefined, 'notifications', {
      env: {
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'scanner',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'https://scanner.internal/hook',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION: 'Bearer x',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'audit',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL: 'http://audit.internal/',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_1_DISABLED: 'true',
      },
    });
    expect(c.endpoints).toEqual([
      normalizeEndpoint({ name: 'scanner', url: 'https://scanner.internal/hook', headers: { Authorization: ['Bearer x'] } }),
      normalizeEndpoint({ name: 'audit', url: 'http://audit.internal/', disabled: true }),
    ]);
  });

  it('names the variable when the value it set is refused', () => {
    const bad = (env: Record<string, string>) => messageOf(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/' }] }, 'notifications', { env }));
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '5 seconds' })).toBe(
      'notifications.endpoints[0].timeout: invalid duration "5 seconds"; use a number with a unit such as 500ms, 1s, 2m or 1h30m (set by REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT)',
    );
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_0_DISABLED: 'yes' })).toBe(
      'notifications.endpoints[0].disabled: expected true or false, got string "yes" (set by REGISTRY_NOTIFICATIONS_ENDPOINTS_0_DISABLED)',
    );
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_0_MAXEVENTS: '0' })).toContain('expected a whole number of at least 1, got number 0 (set by');
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMOUT: '1s' })).toMatch(
      /^notifications\.endpoints\[0\]\.timout: unknown field; did you mean timeout\? allowed here: name, .*queuepurgetimeout.* \(set by REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMOUT\)$/,
    );
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_2_URL: 'http://x/' })).toBe(
      'REGISTRY_NOTIFICATIONS_ENDPOINTS_2_URL: index 2 is past the end of notifications.endpoints, which has 1 item; the next new one is 1',
    );
    expect(bad({ REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL_HOST: 'x' })).toContain(
      'REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL_HOST: cannot set HOST below notifications.endpoints[0].url, which is string "http://a/"',
    );
    // A mistake the file made is not blamed on a variable.
    expect(messageOf(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/', timeout: 'x' }] }, 'notifications', { env: { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'b' } }))).toBe(
      'notifications.endpoints[0].timeout: invalid duration "x"; use a number with a unit such as 500ms, 1s, 2m or 1h30m',
    );
  });

  it('leaves the value it was given as it was', () => {
    const section = Object.freeze({ endpoints: Object.freeze([Object.freeze({ name: 'a', url: 'http://a/' })]) });
    const c = parseNotificationsConfig(section, 'notifications', { env: { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://b/' } });
    expect(c.endpoints[0].url).toBe('http://b/');
    expect(section.endpoints[0].url).toBe('http://a/');
  });
});

describe("GitLab's container registry fields", () => {
  it('reads queuesizelimit as the endpoint\'s bound on its memory queue, in place of queue.limit', () => {
    const c = parseNotificationsConfig({
      queue: { limit: 100 },
      endpoints: [
        { name: 'a', url: 'http://a/', queuesizelimit: 3000 },
        { name: 'b', url: 'http://b/' },
        { name: 'c', url: 'http://c/', queuesizelimit: 0 }, // GitLab: zero is the default; here, queue.limit
      ],
    });
    expect(c.endpoints.map((e) => e.queueSizeLimit)).toEqual([3000, undefined, undefined]);
    expect(c.queue.limit).toBe(100);
    expect(DEFAULTS.endpoint.queueSizeLimit).toBeUndefined();
    expect(normalizeEndpoint({ name: 'a', url: 'http://a/', queueSizeLimit: 3000 }).queueSizeLimit).toBe(3000);
    expect(messageOf(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/', queuesizelimit: -1 }] }))).toBe(
      'notifications.endpoints[0].queuesizelimit: expected a whole number of at least 0, got number -1',
    );
    expect(messageOf(() => normalizeEndpoint({ name: 'a', url: 'http://a/', queueSizeLimit: 1.5 }))).toBe(
      'endpoint.queueSizeLimit: expected a whole number of at least 0, got number 1.5',
    );
  });

  it("reads queuepurgetimeout as the endpoint's drain time on shutdown, in place of queue.draintimeout", () => {
    const c = parseNotificationsConfig({
      queue: { draintimeout: '2s' },
      endpoints: [
        { name: 'a', url: 'http://a/', queuepurgetimeout: '15s' },
        { name: 'b', url: 'http://b/' },
        { name: 'c', url: 'http://c/', queuepurgetimeout: 0 },
        { name: 'd', url: 'http://d/', queuepurgetimeout: 5_000_000_000 }, // a bare number is nanoseconds
      ],
    });
    expect(c.endpoints.map((e) => e.queuePurgeTimeoutMs)).toEqual([15_000, undefined, undefined, 5000]);
    expect(c.queue.drainTimeoutMs).toBe(2000);
    expect(DEFAULTS.endpoint.queuePurgeTimeoutMs).toBeUndefined();
    expect(normalizeEndpoint({ name: 'a', url: 'http://a/', queuePurgeTimeoutMs: 15_000 }).queuePurgeTimeoutMs).toBe(15_000);
    expect(messageOf(() => parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/', queuepurgetimeout: 'soon' }] }))).toBe(
      'notifications.endpoints[0].queuepurgetimeout: invalid duration "soon"; use a number with a unit such as 500ms, 1s, 2m or 1h30m',
    );
    expect(messageOf(() => normalizeEndpoint({ name: 'a', url: 'http://a/', queuePurgeTimeoutMs: 2 ** 31 }))).toContain(
      'endpoint.queuePurgeTimeoutMs: 2147483648ms is longer than the longest wait a timer keeps',
    );
  });

  it('accepts fanouttimeout when it is a duration, and has no use for it', () => {
    const c = parseNotificationsConfig({ fanouttimeout: '5s', endpoints: [{ name: 'a', url: 'http://a/' }] });
    expect(c).toEqual(parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://a/' }] }));
    expect(messageOf(() => parseNotificationsConfig({ fanouttimeout: 'later' }))).toBe(
      'notifications.fanouttimeout: invalid duration "later"; use a number with a unit such as 500ms, 1s, 2m or 1h30m',
    );
  });

  it("loads the notifications section of GitLab's configuration reference", () => {
    const c = loadNotificationsConfig(
      configFile([
        'notifications:',
        '  fanouttimeout: 5s',
        '  events:',
        '    includereferences: true',
        '  endpoints:',
        '    - name: alistener',
        '      disabled: false',
        '      url: https://my.listener.com/event',
        '      headers:',
        '        Authorization: [Bearer token]',
        '      timeout: 1s',
        '      threshold: 10',
        '      maxretries: 5',
        '      backoff: 1s',
        '      ignoredmediatypes:',
        '        - application/octet-stream',
        '      ignore:',
        '        mediatypes:',
        '          - application/octet-stream',
        '        actions:',
        '          - pull',
        '      queuepurgetimeout: 15s',
        '      queuesizelimit: 3000',
      ]),
    );
    expect(c.includeReferences).toBe(true);
    expect(c.endpoints[0]).toMatchObject({ name: 'alistener', maxRetries: 5, threshold: 10, queuePurgeTimeoutMs: 15_000, queueSizeLimit: 3000 });
  });

  it('takes the GitLab fields from the environment too', () => {
    const c = parseNotificationsConfig(undefined, 'notifications', {
      env: {
        REGISTRY_NOTIFICATIONS_FANOUTTIMEOUT: '5s',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'a',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://a/',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_QUEUESIZELIMIT: '3000',
        REGISTRY_NOTIFICATIONS_ENDPOINTS_0_QUEUEPURGETIMEOUT: '15s',
      },
    });
    expect(c.endpoints[0]).toMatchObject({ queueSizeLimit: 3000, queuePurgeTimeoutMs: 15_000 });
  });
});

describe('an unknown field names the nearest known one', () => {
  it.each<[string, unknown, string]>([
    ['a missing letter', { endpoints: [{ name: 'a', url: 'http://a/', timout: '1s' }] }, 'notifications.endpoints[0].timout: unknown field; did you mean timeout? allowed here: name, '],
    ['two letters swapped', { endpoints: [{ name: 'a', url: 'http://a/', tiemout: '1s' }] }, 'notifications.endpoints[0].tiemout: unknown field; did you mean timeout?'],
    ['the wrong case', { endpoints: [{ name: 'a', url: 'http://a/', Timeout: '1s' }] }, 'notifications.endpoints[0].Timeout: unknown field; did you mean timeout?'],
    ['a singular', { endpoint: [] }, 'notifications.endpoint: unknown field; did you mean endpoints? allowed here: events, endpoints, queue'],
    ['a rule list', { endpoints: [{ name: 'a', url: 'http://a/', ignore: { action: ['pull'] } }] }, 'notifications.endpoints[0].ignore.action: unknown field; did you mean actions?'],
    ['a queue field', { queue: { drainTimeout: '1s' } }, 'notifications.queue.drainTimeout: unknown field; did you mean draintimeout?'],
    ['a GitLab field', { endpoints: [{ name: 'a', url: 'http://a/', queuesizelimt: 1 }] }, 'did you mean queuesizelimit?'],
  ])('%s', (_kind, section, message) => {
    expect(messageOf(() => parseNotificationsConfig(section))).toContain(message);
  });

  it.each<[string, unknown, string]>([
    ['a different word', { hooks: [] }, 'notifications.hooks: unknown field; allowed here: events, endpoints, queue'],
    ['an abbreviation', { endpoints: [{ name: 'a', url: 'http://a/', include: { repos: ['x'] } }] }, 'notifications.endpoints[0].include.repos: unknown field; allowed here: mediatypes'],
    ['a short name two edits away', { endpoints: [{ name: 'a', url: 'http://a/', nm: 'x' }] }, 'notifications.endpoints[0].nm: unknown field; allowed here:'],
  ])('suggests nothing for %s', (_kind, section, message) => {
    expect(messageOf(() => parseNotificationsConfig(section))).toContain(message);
  });

  it('measures closeness by edits, relative to the length of the names', () => {
    expect(nearestName('timout', ['name', 'timeout', 'threshold'])).toBe('timeout');
    expect(nearestName('treshold', ['timeout', 'threshold'])).toBe('threshold');
    expect(nearestName('maxbackof', ['maxbackoff', 'backoff'])).toBe('maxbackoff');
    expect(nearestName('backof', ['maxbackoff', 'backoff'])).toBe('backoff');
    expect(nearestName('lingr', ['linger'])).toBe('linger');
    expect(nearestName('url', ['uri'])).toBe('uri');
    expect(nearestName('abc', ['xyz'])).toBeUndefined();
    expect(nearestName('secretz', ['secrets'])).toBe('secrets');
    expect(nearestName('includereference', ['includereferences'])).toBe('includereferences');
    expect(nearestName('queue', [])).toBeUndefined();
  });
});

describe('GitLab fields take effect in createNotifications', () => {
  it("queuesizelimit bounds that endpoint's memory queue: past it events are dropped and counted", async () => {
    // Port 9 on loopback refuses: the first event stays in flight, the rest queue up.
    const n = createNotifications({
      queue: { limit: 100 },
      endpoints: [{ name: 'small', url: 'http://127.0.0.1:9/', queuesizelimit: 2, backoff: '1h', threshold: 1 }],
    });
    try {
      const refused: string[] = [];
      for (let i = 0; i < 5; i++) await n.endpoint('small').write(makeEvents(1)).catch((err: Error) => refused.push(err.name));
      const { Events, Dropped } = n.debugVars()[0].Metrics;
      expect(Events + Dropped).toBe(5);
      expect(Dropped).toBeGreaterThanOrEqual(2);
      expect(refused).toEqual(Array(Dropped).fill('StoreFullError'));
    } finally {
      await n.close();
    }
  });

  it('queuepurgetimeout is how long that endpoint drains on close', async () => {
    const n = createNotifications({ queue: { draintimeout: '10s' }, endpoints: [{ name: 'quick', url: 'http://127.0.0.1:9/', queuepurgetimeout: '50ms' }] });
    await n.endpoint('quick').write(makeEvents(1));
    const started = Date.now();
    await n.close();
    // The queue's own 10s would hold close() that long; the endpoint's 50ms does not.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
