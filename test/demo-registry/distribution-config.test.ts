// Distribution's whole configuration schema: what the demo reads, accepts without
// applying (one warning line), refuses, and how it names a field it does not know.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../lib';
import { loadRegistryConfig, notAppliedWarning, parseRegistryConfig } from '../../demo-registry/config';
import { editDistance, nearestName } from '../../demo-registry/config-reader';
import { configFailure } from '../helpers/config-failure';

const DEBIAN_SAMPLE = '/etc/docker/registry/config.yml';

const failure = (raw: unknown): ConfigError => configFailure(() => parseRegistryConfig(raw));

/** Every section of Distribution's configuration reference, with a value in each field. */
const everything = () => ({
  version: 0.1,
  log: {
    accesslog: { disabled: true },
    level: 'debug',
    formatter: 'json',
    fields: { service: 'registry', environment: 'staging' },
    hooks: [{ type: 'mail', disabled: false, levels: ['panic'], options: { smtp: { addr: 'mail.example.com:25', username: 'u', password: 'p', insecure: true }, from: 'a@example.com', to: ['b@example.com'] } }],
    reportcaller: false,
  },
  loglevel: 'debug',
  storage: {
    filesystem: { rootdirectory: '/var/lib/registry', maxthreads: 100 },
    delete: { enabled: true },
    redirect: { disable: false },
    cache: { blobdescriptor: 'inmemory', blobdescriptorsize: 10000 },
    maintenance: { uploadpurging: { enabled: true, age: '168h', interval: '24h', dryrun: false }, readonly: { enabled: false } },
    tag: { concurrencylimit: 8 },
  },
  auth: { htpasswd: { realm: 'basic-realm', path: '/path/to/htpasswd' } },
  middleware: {
    registry: [{ name: 'ARegistryMiddleware', options: { foo: 'bar' } }],
    repository: [{ name: 'ARepositoryMiddleware', options: { foo: 'bar' } }],
    storage: [{ name: 'cloudfront', options: { baseurl: 'https://my.cloudfronted.domain.com/', privatekey: '/path/to/pem', keypairid: 'id', duration: '3000s', ipfilteredby: 'awsregion' } }],
  },
  reporting: { bugsnag: { apikey: 'k', releasestage: 'bugsnagreleasestage', endpoint: 'e' }, newrelic: { licensekey: 'k', name: 'n', verbose: true } },
  http: {
    addr: 'localhost:5000',
    net: 'tcp',
    prefix: '/my/nested/registry/',
    host: 'https://myregistryaddress.org:5000',
    secret: 'asecretforlocaldevelopment',
    relativeurls: false,
    draintimeout: '60s',
    tls: {
      certificate: '/path/to/x509/public',
      key: '/path/to/x509/private',
      clientcas: ['/path/to/ca.pem', '/path/to/another/ca.pem'],
      minimumtls: 'tls1.2',
      ciphersuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
      letsencrypt: { cachefile: '/path/to/cache-file', email: 'emailused@letsencrypt.com', hosts: ['myregistryaddress.org'] },
    },
    debug: { addr: 'localhost:5001', prometheus: { enabled: true, path: '/metrics' } },
    headers: { 'X-Content-Type-Options': ['nosniff'] },
    http2: { disabled: false },
    h2c: { enabled: false },
  },
  notifications: {
    events: { includereferences: true },
    endpoints: [{ name: 'alistener', disabled: false, url: 'https://my.listener.com/event', headers: { Authorization: ['Bearer t'] }, timeout: '1s', threshold: 10, backoff: '1s', ignoredmediatypes: ['application/octet-stream'], ignore: { mediatypes: ['application/octet-stream'], actions: ['pull'] } }],
  },
  redis: { addr: 'localhost:6379', password: 'asecret', db: 0, dialtimeout: '10ms', readtimeout: '10ms', writetimeout: '10ms', pool: { maxidle: 16, maxactive: 64, idletimeout: '300s' }, tls: { enabled: false } },
  health: {
    storagedriver: { enabled: true, interval: '10s', threshold: 3 },
    file: [{ file: '/path/to/checked/file', interval: '10s' }],
    http: [{ uri: 'http://server.to.check/must/return/200', headers: { Authorization: ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=='] }, statuscode: 200, timeout: '3s', interval: '10s', threshold: 3 }],
    tcp: [{ addr: 'redis-server.domain.com:6379', timeout: '3s', interval: '10s', threshold: 3 }],
  },
  proxy: { remoteurl: 'https://registry-1.docker.io', username: 'u', password: 'p', ttl: '168h' },
  catalog: { maxentries: 100 },
  validation: { disabled: false, manifests: { urls: { allow: ['^https?://([^/]+\\.)*example\\.com/'], deny: ['^https?://www\\.example\\.com/'] } } },
  policy: { repository: { classes: ['image'] } },
  compatibility: { schema1: { trustkey: '/path/to/key', enabled: true } },
});

describe("Distribution's whole schema", () => {
  it('reads every section of the configuration reference, naming in one line what it does not apply', () => {
    const doc = everything();
    // Letsencrypt alone is refused (it would serve plain HTTP); beside a certificate it is accepted.
    const config = parseRegistryConfig(doc);
    expect(config.log).toEqual({ level: 'debug', formatter: 'json', fields: { service: 'registry', environment: 'staging' }, accessLog: false, distribution: true });
    expect(config.http).toMatchObject({
      addr: { host: 'localhost', port: 5000 },
      prefix: '/my/nested/registry',
      host: 'https://myregistryaddress.org:5000',
      relativeUrls: false,
      drainTimeoutMs: 60_000,
      headers: { 'X-Content-Type-Options': ['nosniff'] },
      tls: {
        certificate: '/path/to/x509/public',
        key: '/path/to/x509/private',
        clientCas: ['/path/to/ca.pem', '/path/to/another/ca.pem'],
        minimumTls: 'tls1.2',
        cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
      },
      debugAddr: { host: 'localhost', port: 5001 },
    });
    expect(config.storage.cache).toEqual({ blobdescriptor: 'inmemory', blobdescriptorsize: 10000 });
    expect(config.catalog).toEqual({ maxEntries: 100 });
    expect(config.notifications.endpoints[0].name).toBe('alistener');
    expect(notAppliedWarning(config)).toBe(
      'accepted, not applied here: middleware, reporting, redis, proxy, validation, policy, compatibility, ' +
        'log.hooks, storage.filesystem.maxthreads, storage.redirect, storage.tag, http.secret, http.tls.letsencrypt, http.http2',
    );
  });

  it("reads Debian's sample config.yml as it is, applying all of it", () => {
    if (!existsSync(DEBIAN_SAMPLE)) {
      if (process.env.CI) throw new Error(`${DEBIAN_SAMPLE} is missing`);
      console.warn(`*** ${DEBIAN_SAMPLE} missing: Debian's sample config not checked ***`);
      return;
    }
    const config = parseRegistryConfig(parseYaml(readFileSync(DEBIAN_SAMPLE, 'utf8')));
    expect(config.log).toMatchObject({ distribution: true, formatter: 'text', level: 'info', fields: { service: 'registry' }, accessLog: true });
    expect(config.storage).toMatchObject({ driver: 'filesystem', rootDirectory: '/var/lib/docker-registry', deleteEnabled: true, cache: { blobdescriptor: 'inmemory' } });
    expect(config.http.headers).toEqual({ 'X-Content-Type-Options': ['nosniff'] });
    expect(config.auth).toEqual({ htpasswd: { realm: 'basic-realm', path: '/etc/docker/registry' } });
    expect(config.health).toEqual({ storagedriver: { intervalMs: 10_000, threshold: 3 }, file: [], http: [], tcp: [] });
    expect(notAppliedWarning(config)).toBeUndefined();
  });

  it('sends nothing to the warning that is switched off', () => {
    const config = parseRegistryConfig({
      version: '0.1',
      storage: { filesystem: { rootdirectory: '/x' } },
      log: { hooks: [{ type: 'mail', disabled: true }] },
      http: { http2: { disabled: true }, h2c: { enabled: false } },
      middleware: {},
    });
    expect(config.notApplied).toEqual([]);
    expect(notAppliedWarning(config)).toBeUndefined();
  });

  it.each([
    ['log.formater', { log: { formater: 'json' } }, 'log.formater: unknown field; did you mean "formatter"?'],
    ['log.accesslog.disable', { log: { accesslog: { disable: true } } }, 'log.accesslog.disable: unknown field; did you mean "disabled"?'],
    ['loglevel value', { loglevel: 'verbose' }, 'loglevel: expected one of error, warn, info, debug, got string "verbose"'],
    ['log.formatter value', { log: { formatter: 'xml' } }, 'log.formatter: expected one of text, json, logstash, got string "xml"'],
    ['redis.adress', { redis: { adress: 'localhost:6379' } }, 'redis.adress: unknown field; did you mean "addrs"?'],
    ['redis.pool.maxidel', { redis: { pool: { maxidel: 1 } } }, 'redis.pool.maxidel: unknown field; did you mean "maxidle"?'],
    ['health.storagedriver.intervall', { health: { storagedriver: { intervall: '10s' } } }, 'health.storagedriver.intervall: unknown field; did you mean "interval"?'],
    ['health.http[0].statuscod', { health: { http: [{ uri: 'http://x/', statuscod: 200 }] } }, 'health.http[0].statuscod: unknown field; did you mean "statuscode"?'],
    ['middleware.registri', { middleware: { registri: [] } }, 'middleware.registri: unknown field; did you mean "registry"?'],
    ['storage.maintenance.uploadpurging.intreval', { storage: { filesystem: { rootdirectory: '/x' }, maintenance: { uploadpurging: { intreval: '1h' } } } }, 'storage.maintenance.uploadpurging.intreval: unknown field; did you mean "interval"?'],
    ['storage.cache.blobdescriptor value', { storage: { filesystem: { rootdirectory: '/x' }, cache: { blobdescriptor: 'memcached' } } }, 'storage.cache.blobdescriptor: expected one of inmemory, redis'],
    ['http.tls.minimumtls value', { http: { tls: { certificate: '/c', key: '/k', minimumtls: 'tls1.4' } } }, 'http.tls.minimumtls: expected one of tls1.0, tls1.1, tls1.2, tls1.3'],
    ['http.tls.ciphersuites value', { http: { tls: { certificate: '/c', key: '/k', ciphersuites: ['TLS_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'] } } }, 'http.tls.ciphersuites[1]: unknown cipher suite "ECDHE-RSA-AES128-GCM-SHA256"; use Go\'s names'],
    ['http.tls key without certificate', { http: { tls: { key: '/k' } } }, 'http.tls.certificate: required with http.tls.key'],
    ['http.draintimeout value', { http: { draintimeout: 'soon' } }, 'http.draintimeout: invalid duration "soon"'],
    ['http.headers value', { http: { headers: { 'X-A': 'nosniff' } } }, 'http.headers.X-A: expected a list of strings such as [nosniff], got string "nosniff"'],
    ['http.prefix value', { http: { prefix: 'registry' } }, 'http.prefix: expected a path starting with "/"'],
    ['catalog.maxentries value', { catalog: { maxentries: 0 } }, 'catalog.maxentries: expected a whole number of at least 1, got number 0'],
    ['catalog.maxentry', { catalog: { maxentry: 5 } }, 'catalog.maxentry: unknown field; did you mean "maxentries"?'],
    ['proxy.remoteurI', { proxy: { remoteurI: 'https://x' } }, 'proxy.remoteurI: unknown field; did you mean "remoteurl"?'],
    ['validation.manifests.url', { validation: { manifests: { url: {} } } }, 'validation.manifests.url: unknown field; did you mean "urls"?'],
  ])('names an unknown field or a bad value: %s', (_label, extra, message) => {
    const raw = { version: '0.1', storage: { filesystem: { rootdirectory: '/x' } }, ...extra };
    expect(failure(raw).message).toContain(message);
  });

  it.each([
    ['s3', { s3: { region: 'us-east-1', bucket: 'b' } }, 'storage.s3: the s3 storage driver is not implemented here; use filesystem (or inmemory)'],
    ['azure', { azure: { accountname: 'a' } }, 'storage.azure: the azure storage driver is not implemented here'],
    ['gcs', { gcs: { bucket: 'b' }, delete: { enabled: true } }, 'storage.gcs: the gcs storage driver is not implemented here'],
  ])('refuses the %s driver with a clear error', (_driver, storage, message) => {
    expect(failure({ version: '0.1', storage }).message).toContain(message);
  });

  it('refuses token and silly auth rather than running without authentication', () => {
    const base = { version: '0.1', storage: { filesystem: { rootdirectory: '/x' } } };
    expect(failure({ ...base, auth: { token: { realm: 'r', service: 's', issuer: 'i', rootcertbundle: '/b' } } }).message).toContain(
      'auth.token: token authentication is not implemented here; use auth.htpasswd',
    );
    expect(failure({ ...base, auth: { silly: { realm: 'r', service: 's' } } }).message).toContain('auth.silly: silly authentication is not implemented here');
    expect(failure({ ...base, auth: { token: { realmm: 'r' } } }).message).toContain('auth.token.realmm: unknown field; did you mean "realm"?');
  });

  it('takes the inmemory driver, and the deprecated loglevel', () => {
    const config = parseRegistryConfig({ version: '0.1', loglevel: 'warn', storage: { inmemory: null } });
    expect(config.storage.driver).toBe('inmemory');
    expect(config.storage.rootDirectory).toBeUndefined();
    expect(config.log).toMatchObject({ level: 'warn', distribution: true });
    expect(parseRegistryConfig({ version: '0.1', loglevel: 'warn', log: { level: 'error' }, storage: { inmemory: {} } }).log.level).toBe('error');
  });

  it('passes storage.cache on as written, and maintenance settings', () => {
    const config = parseRegistryConfig({
      version: '0.1',
      storage: {
        filesystem: { rootdirectory: '/x' },
        cache: { blobdescriptor: 'redis' },
        maintenance: { uploadpurging: { enabled: true, age: '2h', interval: '30m', dryrun: true }, readonly: { enabled: true } },
      },
    });
    expect(config.storage.cache).toEqual({ blobdescriptor: 'redis' });
    expect(config.storage.uploadPurging).toEqual({ enabled: true, ageMs: 7_200_000, intervalMs: 1_800_000, dryRun: true });
    expect(config.storage.readOnly).toBe(true);
    expect(config.notApplied).toEqual(['storage.cache.blobdescriptor: redis']);
  });

  it('finds the nearest known name by edit distance', () => {
    expect(editDistance('formater', 'formatter')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(nearestName('rootdir', ['rootdirectory', 'maxthreads'])).toBe('rootdirectory');
    expect(nearestName('x', [])).toBeUndefined();
  });
});

describe('environment overrides', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'demo-registry-env-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yml');
  writeFileSync(
    file,
    ['version: 0.1', 'http:', '  addr: :5000', 'storage:', '  filesystem:', '    rootdirectory: /var/lib/registry', 'notifications:', '  endpoints:', '    - name: a', '      url: http://127.0.0.1:9/'].join('\n'),
  );

  it('applies REGISTRY_<PATH> variables from the env it is given, before checking', () => {
    const config = loadRegistryConfig(file, {
      REGISTRY_HTTP_ADDR: '127.0.0.1:5999',
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://hooks.example.com/',
      REGISTRY_LOG_LEVEL: 'debug',
      HOME: '/root',
    });
    expect(config.http.addr).toEqual({ host: '127.0.0.1', port: 5999 });
    expect(config.storage.deleteEnabled).toBe(true);
    expect(config.notifications.endpoints[0].url).toBe('http://hooks.example.com/');
    expect(config.log).toMatchObject({ level: 'debug', distribution: true });
  });

  it('reads no environment unless given one, and checks what a variable set', () => {
    process.env.REGISTRY_HTTP_ADDR = '127.0.0.1:5998';
    try {
      expect(loadRegistryConfig(file).http.addr).toEqual({ host: '', port: 5000 });
    } finally {
      delete process.env.REGISTRY_HTTP_ADDR;
    }
    expect(() => loadRegistryConfig(file, { REGISTRY_LOG_FORMATER: 'json' })).toThrow(/^log\.formater: unknown field; did you mean "formatter"\?.* \(set by REGISTRY_LOG_FORMATER\)$/);
    expect(() => loadRegistryConfig(file, { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: 'soon' })).toThrow(
      /^notifications\.endpoints\[0\]\.timeout: invalid duration "soon".* \(set by REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT\)$/,
    );
    expect(() => loadRegistryConfig(file, { REGISTRY_HTTP: 'text' })).toThrow(/^http: expected a mapping, got string "text" \(set by REGISTRY_HTTP\)$/);
  });
});
