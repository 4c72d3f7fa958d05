import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadNotificationsConfig, parseDuration, parseNotificationsConfig } from '../../lib';

describe('parseNotificationsConfig', () => {
  it('reads a pasted Distribution section and fills Distribution\'s defaults', () => {
    const c = parseNotificationsConfig({
      events: { includereferences: true },
      endpoints: [
        {
          name: 'alistener',
          disabled: false,
          url: 'https://my.listener.com/event',
          headers: { Authorization: ['Bearer <token>'] },
          timeout: '500ms',
          threshold: 5,
          backoff: '1s',
          ignoredmediatypes: ['application/octet-stream'],
          ignore: { mediatypes: ['application/vnd.oci.image.config.v1+json'], actions: ['pull'] },
        },
        { name: 'minimal', url: 'http://127.0.0.1:5001/' },
      ],
    });
    expect(c.includeReferences).toBe(true);
    expect(c.queue).toEqual({ type: 'memory', limit: 0, drainTimeoutMs: 2000, prefix: 'regnotify', claimIdleMs: 60_000, commitTimeoutMs: 250, spoolDir: 'notifications-spool', onStoreError: 'spool' });
    expect(c.endpoints[0]).toEqual({
      name: 'alistener',
      url: 'https://my.listener.com/event',
      disabled: false,
      headers: { Authorization: ['Bearer <token>'] },
      timeoutMs: 500,
      threshold: 5,
      backoffMs: 1000,
      ignoredMediaTypes: ['application/octet-stream'],
      ignore: { mediaTypes: ['application/vnd.oci.image.config.v1+json'], actions: ['pull'], repositories: [], tags: [], kinds: [], topics: [] },
      include: { mediaTypes: [], actions: [], repositories: [], tags: [], kinds: [], topics: [] },
      maxRetries: -1,
      maxEvents: 250,
      maxBytes: 262_144,
      lingerMs: 10,
      envelope: 'v1',
      maxBackoffMs: 1000,
      jitter: 0,
      format: 'distribution',
      secrets: [],
    });
    expect(c.endpoints[1]).toMatchObject({ timeoutMs: 1000, threshold: 10, backoffMs: 1000, headers: {}, disabled: false });
  });

  it('treats zero timeout, threshold and backoff as the defaults, as Distribution does', () => {
    const c = parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://x/', timeout: 0, threshold: 0, backoff: '0' }] });
    expect(c.endpoints[0]).toMatchObject({ timeoutMs: 1000, threshold: 10, backoffMs: 1000 });
  });

  it('reads our extensions beside Distribution\'s fields', () => {
    const c = parseNotificationsConfig({
      queue: { type: 'sqlite', path: '/var/lib/registry/n.db', draintimeout: '10s' },
      endpoints: [
        {
          name: 'a',
          url: 'http://x/',
          maxretries: 5,
          maxevents: 100,
          maxbytes: 1_048_576,
          linger: '50ms',
          envelope: 'v2',
          backoff: '1s',
          maxbackoff: '5m',
          jitter: 0.2,
          format: 'cloudevents-batch',
          secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'plain-text-secret'],
          include: { repositories: ['library/*'], tags: ['v*'], kinds: ['manifest'] },
          ignore: { actions: ['pull'], repositories: ['library/tmp-*'] },
        },
      ],
    });
    expect(c.queue).toEqual({ type: 'sqlite', path: '/var/lib/registry/n.db', limit: 0, drainTimeoutMs: 10_000, prefix: 'regnotify', claimIdleMs: 60_000, commitTimeoutMs: 250, spoolDir: 'notifications-spool', onStoreError: 'spool' });
    const redis = parseNotificationsConfig({ queue: { type: 'redis', url: 'redis://127.0.0.1:6379/2', prefix: 'reg-a', claimidle: '30s', committimeout: '1s' } });
    expect(redis.queue).toMatchObject({ type: 'redis', url: 'redis://127.0.0.1:6379/2', prefix: 'reg-a', claimIdleMs: 30_000, commitTimeoutMs: 1000 });
    const spooled = parseNotificationsConfig({ queue: { type: 'redis', url: 'redis://127.0.0.1:6379', spooldir: '/var/spool/registry', onstoreerror: 'fail' } });
    expect(spooled.queue).toMatchObject({ spoolDir: '/var/spool/registry', onStoreError: 'fail' });
    expect(() => parseNotificationsConfig({ queue: { onstoreerror: 'drop' } })).toThrow('notifications.queue.onstoreerror: expected spool or fail, got string "drop"');
    expect(c.endpoints[0]).toMatchObject({
      maxRetries: 5,
      maxEvents: 100,
      maxBytes: 1_048_576,
      lingerMs: 50,
      envelope: 'v2',
      backoffMs: 1000,
      maxBackoffMs: 300_000,
      jitter: 0.2,
      format: 'cloudevents-batch',
      secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'plain-text-secret'],
      include: { mediaTypes: [], actions: [], repositories: ['library/*'], tags: ['v*'], kinds: ['manifest'] },
      ignore: { mediaTypes: [], actions: ['pull'], repositories: ['library/tmp-*'], tags: [], kinds: [], topics: [] },
    });
  });

  it('batches by default, except in the single-event CloudEvents formats; maxevents 1 stays one per request', () => {
    const c = parseNotificationsConfig({
      endpoints: [
        { name: 'distribution', url: 'http://x/' },
        { name: 'structured', url: 'http://x/', format: 'cloudevents' },
        { name: 'binary', url: 'http://x/', format: 'cloudevents-binary' },
        { name: 'batch', url: 'http://x/', format: 'cloudevents-batch' },
        { name: 'strict', url: 'http://x/', maxevents: 1, maxbytes: 0, linger: '0s' },
        { name: 'explicit', url: 'http://x/', format: 'cloudevents', maxevents: 1 },
      ],
    });
    expect(c.endpoints.map((e) => [e.name, e.maxEvents, e.maxBytes, e.lingerMs])).toEqual([
      ['distribution', 250, 262_144, 10],
      ['structured', 1, 262_144, 10],
      ['binary', 1, 262_144, 10],
      ['batch', 250, 262_144, 10],
      ['strict', 1, 0, 0],
      ['explicit', 1, 262_144, 10],
    ]);
  });

  it('accepts an empty or missing section', () => {
    expect(parseNotificationsConfig(undefined).endpoints).toEqual([]);
    expect(parseNotificationsConfig({}).endpoints).toEqual([]);
  });

  it('returns a parsed config unchanged', () => {
    const c = parseNotificationsConfig({ endpoints: [{ name: 'a', url: 'http://x/' }] });
    expect(parseNotificationsConfig(c)).toBe(c);
  });

  // [kind of mistake, section, message]
  it.each<[string, unknown, string]>([
    ['section not a mapping', ['x'], 'notifications: expected a mapping, got a list (["x"])'],
    ['unknown field', { endpoint: [] }, 'notifications.endpoint: unknown field; did you mean endpoints? allowed here: events, endpoints, queue'],
    ['endpoints not a list', { endpoints: { name: 'a' } }, 'notifications.endpoints: expected a list of endpoints'],
    ['missing name', { endpoints: [{ url: 'http://x/' }] }, 'notifications.endpoints[0].name: required'],
    ['missing url', { endpoints: [{ name: 'a' }] }, 'notifications.endpoints[0].url: required'],
    ['bad url', { endpoints: [{ name: 'a', url: 'not a url' }] }, 'notifications.endpoints[0].url: invalid URL "not a url"'],
    ['bad scheme', { endpoints: [{ name: 'a', url: 'ftp://x/' }] }, 'notifications.endpoints[0].url: unsupported scheme "ftp:"; use http:, https:, nats:, amqp:, amqps:, mqtt:, mqtts:'],
    ['duplicate name', { endpoints: [{ name: 'a', url: 'http://x/' }, { name: 'a', url: 'http://y/' }] }, 'notifications.endpoints[1].name: duplicate endpoint name "a"'],
    ['bad duration', { endpoints: [{ name: 'a', url: 'http://x/', timeout: '5 seconds' }] }, 'notifications.endpoints[0].timeout: invalid duration "5 seconds"; use a number with a unit such as 500ms, 1s, 2m or 1h30m'],
    ['negative threshold', { endpoints: [{ name: 'a', url: 'http://x/', threshold: -1 }] }, 'notifications.endpoints[0].threshold: expected a whole number of at least 0, got number -1'],
    ['string threshold', { endpoints: [{ name: 'a', url: 'http://x/', threshold: 'ten' }] }, 'notifications.endpoints[0].threshold: expected a whole number of at least 0, got string "ten"'],
    ['bool as string', { endpoints: [{ name: 'a', url: 'http://x/', disabled: 'yes' }] }, 'notifications.endpoints[0].disabled: expected true or false, got string "yes"'],
    ['headers as a list', { endpoints: [{ name: 'a', url: 'http://x/', headers: ['Authorization: x'] }] }, 'notifications.endpoints[0].headers: expected a mapping of header names to lists of values'],
    ['bad header name', { endpoints: [{ name: 'a', url: 'http://x/', headers: { 'Bad Header': ['x'] } }] }, 'notifications.endpoints[0].headers.Bad Header: not a valid HTTP header name'],
    ['header value not a string', { endpoints: [{ name: 'a', url: 'http://x/', headers: { A: [1] } }] }, 'notifications.endpoints[0].headers.A[0]: expected a string, got number 1'],
    ['unknown action', { endpoints: [{ name: 'a', url: 'http://x/', ignore: { actions: ['pul'] } }] }, 'notifications.endpoints[0].ignore.actions[0]: unknown action "pul"; allowed: push, pull, mount, delete'],
    ['media types not a list', { endpoints: [{ name: 'a', url: 'http://x/', ignoredmediatypes: 'x' }] }, 'notifications.endpoints[0].ignoredmediatypes: expected a list of strings, got string "x"'],
    ['unknown endpoint field', { endpoints: [{ name: 'a', url: 'http://x/', tiemout: '1s' }] }, 'notifications.endpoints[0].tiemout: unknown field'],
    ['bad envelope', { endpoints: [{ name: 'a', url: 'http://x/', envelope: 'v3' }] }, 'notifications.endpoints[0].envelope: expected v1 or v2, got string "v3"'],
    ['maxevents zero', { endpoints: [{ name: 'a', url: 'http://x/', maxevents: 0 }] }, 'notifications.endpoints[0].maxevents: expected a whole number of at least 1, got number 0'],
    ['maxbytes negative', { endpoints: [{ name: 'a', url: 'http://x/', maxbytes: -1 }] }, 'notifications.endpoints[0].maxbytes: expected a whole number of at least 0, got number -1'],
    ['maxbytes as text', { endpoints: [{ name: 'a', url: 'http://x/', maxbytes: '256KiB' }] }, 'notifications.endpoints[0].maxbytes: expected a whole number of at least 0, got string "256KiB"'],
    ['bad queue type', { queue: { type: 'kafka' } }, 'notifications.queue.type: expected memory, sqlite or redis, got string "kafka"'],
    ['sqlite without path', { queue: { type: 'sqlite' } }, 'notifications.queue.path: required when type is sqlite'],
    ['redis without url', { queue: { type: 'redis' } }, 'notifications.queue.url: required when type is redis'],
    ['redis with a bad url', { queue: { type: 'redis', url: 'http://127.0.0.1:6379' } }, 'notifications.queue.url: expected a redis:// or rediss:// URL'],
    ['unknown kind', { endpoints: [{ name: 'a', url: 'http://x/', include: { kinds: ['layer'] } }] }, 'notifications.endpoints[0].include.kinds[0]: unknown kind "layer"; allowed: manifest, blob, tag, repository'],
    ['unknown include field', { endpoints: [{ name: 'a', url: 'http://x/', include: { repos: ['x'] } }] }, 'notifications.endpoints[0].include.repos: unknown field; allowed here: mediatypes, actions, repositories, tags, kinds'],
    ['bad format', { endpoints: [{ name: 'a', url: 'http://x/', format: 'xml' }] }, 'notifications.endpoints[0].format: expected one of distribution, cloudevents, cloudevents-binary, cloudevents-batch, got string "xml"'],
    ['batching a single-event format', { endpoints: [{ name: 'a', url: 'http://x/', format: 'cloudevents', maxevents: 10 }] }, 'notifications.endpoints[0].maxevents: cloudevents carries one event per request'],
    ['batching the binary format', { endpoints: [{ name: 'a', url: 'http://x/', format: 'cloudevents-binary', maxevents: 2 }] }, 'notifications.endpoints[0].maxevents: cloudevents-binary carries one event per request'],
    ['jitter out of range', { endpoints: [{ name: 'a', url: 'http://x/', jitter: 2 }] }, 'notifications.endpoints[0].jitter: expected a fraction from 0 to 1, got number 2'],
    ['maxbackoff below backoff', { endpoints: [{ name: 'a', url: 'http://x/', backoff: '10s', maxbackoff: '1s' }] }, 'notifications.endpoints[0].maxbackoff: must be at least backoff (10000ms), got 1000ms'],
    ['bad whsec_ secret', { endpoints: [{ name: 'a', url: 'http://x/', secrets: ['whsec_not base64!'] }] }, 'notifications.endpoints[0].secrets[0]: webhook secret after "whsec_" must be base64'],
    ['includereferences not a bool', { events: { includereferences: 'true' } }, 'notifications.events.includereferences: expected true or false'],
  ])('refuses %s with a message naming the field, the value and what is allowed', (_kind, section, message) => {
    let err: unknown;
    try {
      parseNotificationsConfig(section);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
  });
});

describe('parseDuration', () => {
  it.each<[unknown, number]>([
    ['500ms', 500],
    ['1s', 1000],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    [' 1s ', 1000],
    ['250us', 0.25],
    [1_000_000_000, 1000],
  ])('%p is %p ms', (text, ms) => expect(parseDuration(text, 'f')).toBe(ms));

  it.each(['', '1', 's', '1d', '-1s', '1 s', true])('refuses %p', (text) => {
    expect(() => parseDuration(text, 'f')).toThrow(ConfigError);
  });
});

describe('loadNotificationsConfig', () => {
  it('reads the notifications section of a config.yml', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'config.yml');
    writeFileSync(
      file,
      ['version: 0.1', 'notifications:', '  endpoints:', '    - name: a', '      url: http://127.0.0.1:5001/', '      headers:', '        Authorization: [Bearer t]', '      timeout: 500ms'].join('\n'),
    );
    expect(loadNotificationsConfig(file).endpoints[0]).toMatchObject({ name: 'a', timeoutMs: 500, headers: { Authorization: ['Bearer t'] } });
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadNotificationsConfig('/nonexistent/config.yml')).toThrow(/\/nonexistent\/config.yml: cannot read configuration/);
  });
});
