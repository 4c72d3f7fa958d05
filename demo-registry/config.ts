import { ConfigError, parseNotificationsConfig, parseWithEnvOverrides, readConfigFile, type AdminAuth, type NotificationsConfig } from '../lib';
import { Section, shown as describe, type Shape } from './config-reader';
import * as schema from './distribution-schema';
import { DEFAULT_LOG_CONFIG, LOG_FORMATTERS, LOG_LEVELS, type LogConfig } from './log';
import { opensslCiphers } from './tls-ciphers';
import { HEALTH_DEFAULTS, type HealthConfig } from './health';

/** A listen address, `host:port`; an empty host listens on every interface. */
export interface ListenAddress {
  host: string;
  port: number;
}

export type MinimumTls = 'tls1.0' | 'tls1.1' | 'tls1.2' | 'tls1.3';

/** `http.tls`: HTTPS with a certificate and key (PEM files). */
export interface TlsConfig {
  /** `http.tls.certificate`: the server certificate (chain), PEM. */
  certificate: string;
  /** `http.tls.key`: its private key, PEM. */
  key: string;
  /** `http.tls.clientcas`: CA files; when given, clients must present a certificate one of them signed. @default [] */
  clientCas: string[];
  /** `http.tls.minimumtls`. @default 'tls1.2' (Distribution's) */
  minimumTls: MinimumTls;
  /** `http.tls.ciphersuites`, Go's names, for TLS 1.2 and below (TLS 1.3's are always on, as in Go). @default [] (Node's defaults) */
  cipherSuites: string[];
}

/** `storage.maintenance.uploadpurging`. */
export interface UploadPurgingConfig {
  /** @default true */
  enabled: boolean;
  /** Uploads started longer ago than this are removed. @default 168h */
  ageMs: number;
  /** Time between purges. @default 24h */
  intervalMs: number;
  /** Only log what would be removed. @default false */
  dryRun: boolean;
}

/** A Distribution-style `config.yml`, the fields this registry understands, normalized. */
export interface RegistryConfig {
  /** `version`; only `0.1` exists. */
  version: '0.1';
  /** `log` (and the deprecated `loglevel`). */
  log: LogConfig;
  http: {
    /** `http.addr`. @default ':5000' (with `http.net: unix`, see `socketPath`) */
    addr: ListenAddress;
    /** `http.net: unix`: `http.addr` is the path of a Unix socket. @default none (tcp) */
    socketPath?: string;
    /** `http.host`: the externally reachable base URL used in event URLs. @default derived from each request */
    host?: string;
    /** `http.prefix`: the path the API is served under, e.g. `/registry` (no trailing slash). @default none */
    prefix?: string;
    /** `http.relativeurls`: event URLs without scheme and host (`/v2/…`). @default false */
    relativeUrls: boolean;
    /** `http.draintimeout`: on shutdown, how long requests in progress may finish before their connections are closed. @default 0 (closed at once, as Distribution without it) */
    drainTimeoutMs: number;
    /** `http.headers`: added to every response. @default {} */
    headers: Record<string, string[]>;
    /** `http.tls`. @default none (plain HTTP) */
    tls?: TlsConfig;
    /** `http.debug.addr`: where `/debug/vars` and `/metrics` are served. @default none */
    debugAddr?: ListenAddress;
    /**
     * `http.debug.auth` (ours): `token: <secret>` or `htpasswd: {path: <file>}`; the debug
     * address's console, API, stats and health then need those credentials. @default none
     */
    debugAuth?: AdminAuth;
    /** `http.debug.prometheus.path`, when `enabled`: Prometheus metrics there too. @default none (`/metrics` only) */
    prometheusPath?: string;
  };
  /** `auth.htpasswd`. @default anonymous access */
  auth?: { htpasswd: { realm: string; path: string } };
  storage: {
    /** The storage driver: `filesystem`, or `inmemory` (a temporary directory, removed on close). */
    driver: 'filesystem' | 'inmemory';
    /** `storage.filesystem.rootdirectory`; required with `filesystem`, absent with `inmemory`. */
    rootDirectory?: string;
    /** `storage.delete.enabled`. @default false (DELETE answers 405 UNSUPPORTED, as Distribution) */
    deleteEnabled: boolean;
    /** `storage.maintenance.readonly.enabled`: pushes and deletes answer 405. @default false */
    readOnly: boolean;
    /** `storage.maintenance.uploadpurging`. */
    uploadPurging: UploadPurgingConfig;
    /** `storage.cache`, passed on to the storage as written (the demo caches in memory either way). */
    cache: { blobdescriptor?: string; blobdescriptorsize?: number };
  };
  /** `catalog`. */
  catalog: {
    /** `catalog.maxentries`: the most repositories one `_catalog` page returns. @default 1000 */
    maxEntries: number;
  };
  /** `health`: checks that, while failing, make every API request answer 503. @default none */
  health: HealthConfig;
  /** `notifications`, as `parseNotificationsConfig` returns it. @default no endpoints */
  notifications: NotificationsConfig;
  /**
   * What the file sets that Distribution would act on and this registry accepts without
   * acting on (`health`, `redis`, `http.secret`, …), in the file's order: the start-up
   * warning names them.
   */
  notApplied: string[];
}

export const DEFAULT_CONFIG = {
  addr: ':5000',
  deleteEnabled: false,
  readOnly: false,
  relativeUrls: false,
  drainTimeoutMs: 0,
  minimumTls: 'tls1.2',
  uploadPurging: { enabled: true, ageMs: 168 * 3_600_000, intervalMs: 24 * 3_600_000, dryRun: false },
  catalogMaxEntries: 1000,
} as const;

/** Parses `host:port`, `:port` or `[v6]:port`; throws ConfigError naming `field`. */
export function parseListenAddress(value: string, field: string): ListenAddress {
  const m = value.match(/^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(field, `invalid listen address ${JSON.stringify(value)}; use host:port or :port with a port from 0 to 65535`);
  }
  return { host: m[1] ?? m[2], port };
}

/** Whether a section is there and does something: not absent, not empty, not all `disabled`/`enabled: false`. */
function inEffect(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (Array.isArray(value)) return value.some(inEffect);
  if (typeof value !== 'object') return true;
  const mapping = value as Record<string, unknown>;
  if (mapping.disabled === true || mapping.enabled === false) return false;
  return Object.keys(mapping).length > 0;
}

function readLog(raw: Section, notApplied: string[]): LogConfig {
  const log = raw.section('log', schema.LOG_FIELDS);
  const loglevel = raw.choice('loglevel', LOG_LEVELS, DEFAULT_LOG_CONFIG.level);
  if (!raw.mentions('log') && !raw.has('loglevel')) return { ...DEFAULT_LOG_CONFIG };
  const accesslog = log?.section('accesslog', ['disabled']);
  log?.shape('hooks', schema.LOG_HOOK);
  if (inEffect(log?.value('hooks'))) notApplied.push('log.hooks');
  if (log?.boolean('reportcaller', false)) notApplied.push('log.reportcaller');
  return {
    level: log?.choice('level', LOG_LEVELS, loglevel) ?? loglevel,
    formatter: log?.choice('formatter', LOG_FORMATTERS, DEFAULT_LOG_CONFIG.formatter) ?? DEFAULT_LOG_CONFIG.formatter,
    fields: log?.scalars('fields') ?? {},
    accessLog: !(accesslog?.boolean('disabled', false) ?? false),
    distribution: true,
  };
}

function readHttp(raw: Section, notApplied: string[]): RegistryConfig['http'] {
  const http = raw.section('http', schema.HTTP_FIELDS);
  const net = http?.choice('net', ['tcp', 'unix'], 'tcp') ?? 'tcp';
  const addrText = http?.string('addr') ?? DEFAULT_CONFIG.addr;
  let addr: ListenAddress;
  let socketPath: string | undefined;
  if (net === 'unix') {
    if (!http?.has('addr')) throw new ConfigError('http.addr', 'required with http.net: unix; the path of the socket');
    socketPath = addrText;
    addr = { host: '', port: 0 };
  } else {
    addr = parseListenAddress(addrText, 'http.addr');
  }
  const host = http?.string('host');
  if (host !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(host);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError('http.host', `expected an absolute http:// or https:// URL such as https://registry.example.com, got ${describe(host)}`);
    }
  }
  let prefix = http?.string('prefix');
  if (prefix !== undefined) {
    if (!/^\/[^?#\s]*$/.test(prefix)) throw new ConfigError('http.prefix', `expected a path starting with "/", such as /registry/, got ${describe(prefix)}`);
    prefix = prefix.replace(/\/+$/, '') || undefined;
  }
  if (http?.has('secret')) {
    http.string('secret');
    notApplied.push('http.secret');
  }
  const relativeUrls = http?.boolean('relativeurls', DEFAULT_CONFIG.relativeUrls) ?? DEFAULT_CONFIG.relativeUrls;
  const drainTimeoutMs = http?.duration('draintimeout', DEFAULT_CONFIG.drainTimeoutMs, { timer: true }) ?? DEFAULT_CONFIG.drainTimeoutMs;
  const headers = http?.stringLists('headers') ?? {};
  for (const [name, values] of Object.entries(headers)) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new ConfigError(`http.headers.${name}`, 'not a valid header name');
    values.forEach((v, i) => {
      if (/[\r\n\0]/.test(v)) throw new ConfigError(`http.headers.${name}[${i}]`, 'a header value must not contain CR, LF or NUL');
    });
  }

  let tls: TlsConfig | undefined;
  const tlsSection = http?.section('tls', schema.TLS_FIELDS);
  if (tlsSection) {
    tlsSection.shape('letsencrypt', schema.LETSENCRYPT);
    const certificate = tlsSection.string('certificate');
    const key = tlsSection.string('key');
    if (tlsSection.has('letsencrypt')) {
      if (certificate === undefined) throw new ConfigError('http.tls.letsencrypt', 'not implemented here: give http.tls.certificate and http.tls.key instead');
      notApplied.push('http.tls.letsencrypt');
    }
    if (tlsSection.has('clientauth')) {
      tlsSection.choice('clientauth', ['request-client-cert', 'require-any-client-cert', 'verify-client-cert-if-given', 'require-and-verify-client-cert'], 'require-and-verify-client-cert');
      notApplied.push('http.tls.clientauth');
    }
    const clientCas = tlsSection.strings('clientcas');
    const minimumTls = tlsSection.choice('minimumtls', ['tls1.0', 'tls1.1', 'tls1.2', 'tls1.3'], DEFAULT_CONFIG.minimumTls);
    const cipherSuites = tlsSection.strings('ciphersuites');
    opensslCiphers(cipherSuites); // checks the names
    if (certificate !== undefined || key !== undefined) {
      if (certificate === undefined) throw new ConfigError('http.tls.certificate', 'required with http.tls.key: the PEM file of the server certificate');
      if (key === undefined) throw new ConfigError('http.tls.key', 'required with http.tls.certificate: the PEM file of its private key');
      tls = { certificate, key, clientCas, minimumTls, cipherSuites };
    } else if (clientCas.length > 0 || tlsSection.has('minimumtls')) {
      throw new ConfigError('http.tls.certificate', 'required: HTTPS needs http.tls.certificate and http.tls.key');
    }
  }

  const debug = http?.section('debug', ['addr', 'prometheus', 'auth']);
  const debugAddrText = debug?.string('addr', true);
  const debugAddr = debugAddrText ? parseListenAddress(debugAddrText, 'http.debug.addr') : undefined;
  const prometheus = debug?.section('prometheus', ['enabled', 'path']);
  let prometheusPath: string | undefined;
  if (prometheus?.boolean('enabled', false)) {
    prometheusPath = prometheus.string('path') ?? '/metrics';
    if (!prometheusPath.startsWith('/')) throw new ConfigError('http.debug.prometheus.path', `expected a path starting with "/", got ${describe(prometheusPath)}`);
  } else {
    prometheus?.string('path');
  }
  // Ours, beside Distribution's fields: credentials for the debug address's console and stats.
  const debugAuthSection = debug?.section('auth', ['token', 'htpasswd']);
  let debugAuth: AdminAuth | undefined;
  if (debugAuthSection) {
    const token = debugAuthSection.string('token');
    const htpasswd = debugAuthSection.section('htpasswd', ['path'])?.string('path', true);
    if ((token === undefined) === (htpasswd === undefined)) {
      throw new ConfigError('http.debug.auth', 'give exactly one of token: <secret> or htpasswd: {path: <file>}');
    }
    if (token === '') throw new ConfigError('http.debug.auth.token', 'must not be empty');
    debugAuth = token !== undefined ? { token } : { htpasswd: htpasswd! };
  }
  const http2 = http?.section('http2', ['disabled']);
  if (http2 && !http2.boolean('disabled', false)) notApplied.push('http.http2');
  const h2c = http?.section('h2c', ['enabled']);
  if (h2c?.boolean('enabled', false)) notApplied.push('http.h2c');

  return {
    addr,
    ...(socketPath ? { socketPath } : {}),
    ...(host ? { host } : {}),
    ...(prefix ? { prefix } : {}),
    relativeUrls,
    drainTimeoutMs,
    headers,
    ...(tls ? { tls } : {}),
    ...(debugAddr ? { debugAddr } : {}),
    ...(prometheusPath ? { prometheusPath } : {}),
    ...(debugAuth ? { debugAuth } : {}),
  };
}

function readAuth(raw: Section): RegistryConfig['auth'] {
  const auth = raw.section('auth', ['htpasswd', 'token', 'silly']);
  if (!auth) return undefined;
  const schemes = auth.keys();
  if (schemes.length > 1) throw new ConfigError('auth', `configure one access controller, got ${schemes.join(' and ')}`);
  // Accepting these without applying them would leave the registry open to anyone: refused.
  if (auth.mentions('token')) {
    auth.shape('token', schema.AUTH_TOKEN);
    throw new ConfigError('auth.token', 'token authentication is not implemented here; use auth.htpasswd');
  }
  if (auth.mentions('silly')) {
    auth.shape('silly', schema.AUTH_SILLY);
    throw new ConfigError('auth.silly', 'silly authentication is not implemented here; use auth.htpasswd');
  }
  const htpasswd = auth.section('htpasswd', ['realm', 'path'], true)!;
  const realm = htpasswd.string('realm', true)!;
  if (/["\\]/.test(realm)) throw new ConfigError('auth.htpasswd.realm', `must not contain quotes or backslashes, got ${describe(realm)}`);
  return { htpasswd: { realm, path: htpasswd.string('path', true)! } };
}

function readStorage(raw: Section, notApplied: string[]): RegistryConfig['storage'] {
  const known = [...schema.STORAGE_DRIVERS, ...schema.STORAGE_PARAMETERS];
  const storage = raw.section('storage', known, true)!;
  const drivers = storage.keys().filter((k) => (schema.STORAGE_DRIVERS as readonly string[]).includes(k));
  if (drivers.length === 0) throw new ConfigError('storage', `required: one storage driver; this registry implements filesystem (and inmemory)`);
  if (drivers.length > 1) throw new ConfigError('storage', `configure one storage driver, got ${drivers.join(' and ')}`);
  const driver = drivers[0];
  let rootDirectory: string | undefined;
  if (driver === 'filesystem') {
    const filesystem = storage.section('filesystem', ['rootdirectory', 'maxthreads'], true)!;
    rootDirectory = filesystem.string('rootdirectory', true)!;
    if (filesystem.has('maxthreads')) {
      filesystem.integer('maxthreads', 100, 25);
      notApplied.push('storage.filesystem.maxthreads');
    }
  } else if (driver === 'inmemory') {
    Section.of(storage.value('inmemory'), 'storage.inmemory', []); // takes no parameters
  } else {
    throw new ConfigError(`storage.${driver}`, `the ${driver} storage driver is not implemented here; use filesystem (or inmemory)`);
  }

  const deleteEnabled = storage.section('delete', ['enabled'])?.boolean('enabled', DEFAULT_CONFIG.deleteEnabled) ?? DEFAULT_CONFIG.deleteEnabled;

  const maintenance = storage.section('maintenance', ['uploadpurging', 'readonly']);
  const purging = maintenance?.section('uploadpurging', ['enabled', 'age', 'interval', 'dryrun']);
  const defaults = DEFAULT_CONFIG.uploadPurging;
  const uploadPurging: UploadPurgingConfig = {
    enabled: purging?.boolean('enabled', defaults.enabled) ?? defaults.enabled,
    ageMs: purging?.duration('age', defaults.ageMs) ?? defaults.ageMs,
    intervalMs: purging?.duration('interval', defaults.intervalMs, { timer: true }) ?? defaults.intervalMs,
    dryRun: purging?.boolean('dryrun', defaults.dryRun) ?? defaults.dryRun,
  };
  if (uploadPurging.enabled && uploadPurging.intervalMs <= 0) throw new ConfigError('storage.maintenance.uploadpurging.interval', 'must be more than 0');
  const readOnly = maintenance?.section('readonly', ['enabled'])?.boolean('enabled', DEFAULT_CONFIG.readOnly) ?? DEFAULT_CONFIG.readOnly;

  const cacheSection = storage.section('cache', ['blobdescriptor', 'blobdescriptorsize', 'layerinfo']);
  const cache: RegistryConfig['storage']['cache'] = {};
  if (cacheSection) {
    const blobdescriptor = cacheSection.choice('blobdescriptor', ['inmemory', 'redis'], 'inmemory');
    // `layerinfo` is the name Distribution 2.0 gave it, still read.
    const layerinfo = cacheSection.choice('layerinfo', ['inmemory', 'redis'], blobdescriptor);
    if (cacheSection.has('blobdescriptor')) cache.blobdescriptor = blobdescriptor;
    else if (cacheSection.has('layerinfo')) cache.blobdescriptor = layerinfo;
    if (cacheSection.has('blobdescriptorsize')) cache.blobdescriptorsize = cacheSection.integer('blobdescriptorsize', 10_000, 1);
    if (cache.blobdescriptor === 'redis') notApplied.push('storage.cache.blobdescriptor: redis');
  }
  const redirect = storage.section('redirect', ['disable']);
  if (redirect) {
    redirect.boolean('disable', false);
    notApplied.push('storage.redirect');
  }
  const tag = storage.section('tag', ['concurrencylimit']);
  if (tag) {
    tag.integer('concurrencylimit', 0, 0);
    notApplied.push('storage.tag');
  }

  return {
    driver,
    ...(rootDirectory !== undefined ? { rootDirectory } : {}),
    deleteEnabled,
    readOnly,
    uploadPurging,
    cache,
  };
}

function readHealth(raw: Section): HealthConfig {
  const health = raw.section('health', ['storagedriver', 'file', 'http', 'tcp']);
  const interval = (s: Section) => {
    const ms = s.duration('interval', HEALTH_DEFAULTS.intervalMs, { timer: true });
    if (ms <= 0) throw new ConfigError(s.at('interval'), 'must be more than 0');
    return ms;
  };
  const driver = health?.section('storagedriver', ['enabled', 'interval', 'threshold']);
  return {
    ...(driver?.boolean('enabled', false) ? { storagedriver: { intervalMs: interval(driver), threshold: driver.integer('threshold', HEALTH_DEFAULTS.threshold, 0) } } : {}),
    file: health?.list('file', ['file', 'interval'], (f) => ({ file: f.string('file', true)!, intervalMs: interval(f) })) ?? [],
    http:
      health?.list('http', ['uri', 'headers', 'statuscode', 'timeout', 'interval', 'threshold'], (h) => ({
        uri: h.string('uri', true)!,
        headers: h.stringLists('headers'),
        statuscode: h.integer('statuscode', HEALTH_DEFAULTS.statuscode, 100),
        timeoutMs: h.duration('timeout', HEALTH_DEFAULTS.timeoutMs, { timer: true }),
        intervalMs: interval(h),
        threshold: h.integer('threshold', HEALTH_DEFAULTS.threshold, 0),
      })) ?? [],
    tcp:
      health?.list('tcp', ['addr', 'timeout', 'interval', 'threshold'], (t) => ({
        addr: t.string('addr', true)!,
        timeoutMs: t.duration('timeout', HEALTH_DEFAULTS.timeoutMs, { timer: true }),
        intervalMs: interval(t),
        threshold: t.integer('threshold', HEALTH_DEFAULTS.threshold, 0),
      })) ?? [],
  };
}

/**
 * Checks and normalizes a parsed config.yml: Distribution's whole schema. What the demo
 * implements is read and checked; what it accepts without applying is checked for field
 * names and listed in `notApplied`; what it cannot serve without misleading (another
 * storage driver, token auth) is refused. Unknown fields and wrong values throw
 * ConfigError naming the field path, the value and what is allowed (for an unknown
 * field, the nearest known name).
 */
export function parseRegistryConfig(value: unknown): RegistryConfig {
  const raw = Section.of(value, 'config', schema.TOP_LEVEL, true)!;
  const version = raw.value('version');
  if (version !== '0.1' && version !== 0.1) throw new ConfigError('version', `expected "0.1", got ${describe(version)}`);
  const notApplied: string[] = [];

  const log = readLog(raw, notApplied);
  const storage = readStorage(raw, notApplied);
  const auth = readAuth(raw);
  const http = readHttp(raw, notApplied);
  const catalog = { maxEntries: raw.section('catalog', ['maxentries'])?.integer('maxentries', DEFAULT_CONFIG.catalogMaxEntries, 1) ?? DEFAULT_CONFIG.catalogMaxEntries };
  const health = readHealth(raw);
  const notifications = parseNotificationsConfig(raw.value('notifications'), 'notifications');

  // Sections checked for their field names only; those in effect lead the warning, in the file's order.
  const checkedOnly: Record<string, Shape> = {
    middleware: schema.MIDDLEWARE,
    reporting: schema.REPORTING,
    redis: schema.REDIS,
    proxy: schema.PROXY,
    validation: schema.VALIDATION,
    policy: schema.POLICY,
    compatibility: schema.COMPATIBILITY,
  };
  const sectionsNotApplied: string[] = [];
  for (const key of raw.keys()) {
    const shape = checkedOnly[key];
    if (shape === undefined) continue;
    raw.shape(key, shape);
    if (inEffect(raw.value(key))) sectionsNotApplied.push(key);
  }

  return {
    version: '0.1',
    log,
    http,
    ...(auth ? { auth } : {}),
    storage,
    catalog,
    health,
    notifications,
    notApplied: [...sectionsNotApplied, ...notApplied],
  };
}

/** The start-up warning naming what the configuration sets that has no effect here; undefined when nothing. */
export function notAppliedWarning(config: RegistryConfig): string | undefined {
  return config.notApplied.length > 0 ? `accepted, not applied here: ${config.notApplied.join(', ')}` : undefined;
}

/**
 * Reads and parses a config.yml; ConfigError (field = the file) when it is not readable
 * YAML. `REGISTRY_<PATH>` variables in `env` (main passes `process.env`) override the
 * file's fields before they are checked, as Distribution reads its environment
 * (`REGISTRY_HTTP_ADDR=:5001`, `REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL=…`).
 */
export function loadRegistryConfig(file: string, env: Record<string, string | undefined> = {}): RegistryConfig {
  return parseWithEnvOverrides(readConfigFile(file), env, parseRegistryConfig);
}

