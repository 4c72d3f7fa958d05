import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../lib';
import { loadRegistryConfig, parseListenAddress, parseRegistryConfig } from '../../demo-registry/config';
import { configFailure } from '../helpers/config-failure';

const valid = () => ({
  version: '0.1',
  http: { addr: '127.0.0.1:5000', host: 'https://registry.example.com', debug: { addr: ':5001' } },
  auth: { htpasswd: { realm: 'r', path: '/etc/registry/htpasswd' } },
  storage: { filesystem: { rootdirectory: '/var/lib/registry' }, delete: { enabled: true } },
  notifications: { endpoints: [{ name: 'hook', url: 'http://127.0.0.1:5001/', timeout: '500ms' }] },
});

const failure = (raw: unknown): ConfigError => configFailure(() => parseRegistryConfig(raw));

describe('parseRegistryConfig', () => {
  it('normalizes a full configuration', () => {
    const config = parseRegistryConfig(valid());
    expect(config.http).toEqual({
      addr: { host: '127.0.0.1', port: 5000 },
      host: 'https://registry.example.com',
      debugAddr: { host: '', port: 5001 },
      relativeUrls: false,
      drainTimeoutMs: 0,
      headers: {},
    });
    expect(config.auth).toEqual({ htpasswd: { realm: 'r', path: '/etc/registry/htpasswd' } });
    expect(config.storage).toEqual({
      driver: 'filesystem',
      rootDirectory: '/var/lib/registry',
      deleteEnabled: true,
      readOnly: false,
      uploadPurging: { enabled: true, ageMs: 168 * 3600_000, intervalMs: 24 * 3600_000, dryRun: false },
      cache: {},
    });
    expect(config.notApplied).toEqual([]);
    expect(config.notifications.endpoints[0]).toMatchObject({ name: 'hook', timeoutMs: 500 });
  });

  it('fills defaults: :5000, deletes disabled, no auth, no endpoints', () => {
    const config = parseRegistryConfig({ version: 0.1, storage: { filesystem: { rootdirectory: 'data' } } });
    expect(config.http.addr).toEqual({ host: '', port: 5000 });
    expect(config.storage.deleteEnabled).toBe(false);
    expect(config.auth).toBeUndefined();
    expect(config.notifications.endpoints).toEqual([]);
  });

  it.each([
    ['an unknown top-level field', { ...valid(), notification: {} }, 'notification: unknown field; did you mean "notifications"? allowed here: version, log, loglevel, storage'],
    ['an unknown nested field', { ...valid(), http: { addr: ':5000', tsl: {} } }, 'http.tsl: unknown field; did you mean "tls"? allowed here: addr, net, host, prefix'],
    ['a second storage driver', { ...valid(), storage: { filesystem: { rootdirectory: '/x' }, s3: {} } }, 'storage: configure one storage driver, got filesystem and s3'],
    ['a wrong version', { ...valid(), version: '2' }, 'version: expected "0.1", got string "2"'],
    ['a port as a number', { ...valid(), http: { addr: 5000 } }, 'http.addr: expected a non-empty string, got number 5000'],
    ['an address without a port', { ...valid(), http: { addr: 'localhost' } }, 'http.addr: invalid listen address "localhost"; use host:port or :port'],
    ['a port out of range', { ...valid(), http: { addr: ':70000' } }, 'http.addr: invalid listen address ":70000"'],
    ['a host that is not a URL', { ...valid(), http: { host: 'registry.example.com' } }, 'http.host: expected an absolute http:// or https:// URL'],
    ['a debug section without addr', { ...valid(), http: { debug: {} } }, 'http.debug.addr: required'],
    ['no storage', { version: '0.1' }, 'storage: required'],
    ['no storage driver', { version: '0.1', storage: { delete: { enabled: true } } }, 'storage: required: one storage driver'],
    ['no root directory', { version: '0.1', storage: { filesystem: {} } }, 'storage.filesystem.rootdirectory: required'],
    ['delete.enabled as a string', { ...valid(), storage: { filesystem: { rootdirectory: '/x' }, delete: { enabled: 'yes' } } }, 'storage.delete.enabled: expected true or false, got string "yes"'],
    ['htpasswd without path', { ...valid(), auth: { htpasswd: { realm: 'r' } } }, 'auth.htpasswd.path: required'],
    ['an unknown auth scheme', { ...valid(), auth: { htpassword: {} } }, 'auth.htpassword: unknown field; did you mean "htpasswd"? allowed here: htpasswd, token, silly'],
    ['a section that is a list', { ...valid(), http: [] }, 'http: expected a mapping, got a list ([])'],
    ['a bad endpoint', { ...valid(), notifications: { endpoints: [{ name: 'x' }] } }, 'notifications.endpoints[0].url: required'],
    ['a bad endpoint duration', { ...valid(), notifications: { endpoints: [{ name: 'x', url: 'http://h/', backoff: 'soon' }] } }, 'notifications.endpoints[0].backoff: invalid duration "soon"'],
  ])('fails on %s, naming the field, the value and what is allowed', (_label, raw, message) => {
    expect(failure(raw).message).toContain(message);
  });

  it('fails on a document that is not a mapping', () => {
    expect(failure('just text').message).toContain('config: expected a mapping');
    expect(failure(null).message).toContain('config: required');
  });
});

describe('loadRegistryConfig', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML as Distribution writes it', () => {
    const file = path.join(dir, 'ok.yml');
    writeFileSync(
      file,
      [
        'version: 0.1',
        'http:',
        '  addr: :5000',
        'storage:',
        '  filesystem:',
        '    rootdirectory: /var/lib/registry',
        'notifications:',
        '  endpoints:',
        '    - name: a',
        '      url: http://127.0.0.1:9/',
        '      headers:',
        '        Authorization: [Bearer t]',
      ].join('\n'),
    );
    const config = loadRegistryConfig(file);
    expect(config.notifications.endpoints[0].headers).toEqual({ Authorization: ['Bearer t'] });
  });

  it('fails on YAML that does not parse, naming the file', () => {
    const file = path.join(dir, 'bad.yml');
    writeFileSync(file, 'version: 0.1\nhttp: [unclosed\n');
    expect(() => loadRegistryConfig(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read configuration`));
  });

  it('checks the demo config.yml', () => {
    const config = loadRegistryConfig(path.join(__dirname, '..', '..', 'demo-registry', 'config.yml'));
    expect(config.http.addr).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(config.notifications.endpoints.map((e) => e.url)).toEqual(['http://127.0.0.1:5001/']);
    expect(config.storage.rootDirectory!.startsWith('.demo-data/')).toBe(true);
  });
});

describe('parseListenAddress', () => {
  it('takes host:port, :port and [v6]:port', () => {
    expect(parseListenAddress('[::1]:80', 'f')).toEqual({ host: '::1', port: 80 });
    expect(parseListenAddress('0.0.0.0:0', 'f')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(() => parseListenAddress('::1:80', 'f')).toThrow('f: invalid listen address');
  });
});
