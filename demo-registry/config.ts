import {
  ConfigError,
  describeValue as describe,
  expectBoolean,
  expectMapping,
  expectString,
  parseNotificationsConfig,
  readConfigFile,
  type NotificationsConfig,
} from '../lib';

/** A listen address, `host:port`; an empty host listens on every interface. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** A Distribution-style `config.yml`, the fields this registry understands, normalized. */
export interface RegistryConfig {
  /** `version`; only `0.1` exists. */
  version: '0.1';
  http: {
    /** `http.addr`. @default ':5000' */
    addr: ListenAddress;
    /** `http.host`: the externally reachable base URL used in event URLs. @default derived from each request */
    host?: string;
    /** `http.debug.addr`: where `/debug/vars` and `/metrics` are served. @default none */
    debugAddr?: ListenAddress;
  };
  /** `auth.htpasswd`. @default anonymous access */
  auth?: { htpasswd: { realm: string; path: string } };
  storage: {
    /** `storage.filesystem.rootdirectory`; required. */
    rootDirectory: string;
    /** `storage.delete.enabled`. @default false (DELETE answers 405 UNSUPPORTED, as Distribution) */
    deleteEnabled: boolean;
  };
  /** `notifications`, as `parseNotificationsConfig` returns it. @default no endpoints */
  notifications: NotificationsConfig;
}

export const DEFAULT_CONFIG = {
  addr: ':5000',
  deleteEnabled: false,
} as const;

/** An optional section: undefined when absent (the library's loader gives `{}`). */
function section(value: unknown, field: string, allowed: readonly string[], required = false): Record<string, unknown> | undefined {
  if ((value === undefined || value === null) && !required) return undefined;
  return expectMapping(value, field, allowed, required);
}

/** Parses `host:port`, `:port` or `[v6]:port`; throws ConfigError naming `field`. */
export function parseListenAddress(value: string, field: string): ListenAddress {
  const m = value.match(/^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(field, `invalid listen address ${JSON.stringify(value)}; use host:port or :port with a port from 0 to 65535`);
  }
  return { host: m[1] ?? m[2], port };
}

/**
 * Checks and normalizes a parsed config.yml. Unknown fields and wrong values throw
 * ConfigError naming the field path, the value and what is allowed.
 */
export function parseRegistryConfig(value: unknown): RegistryConfig {
  const raw = section(value, 'config', ['version', 'http', 'auth', 'storage', 'notifications'], true)!;
  const version = raw.version;
  if (version !== '0.1' && version !== 0.1) throw new ConfigError('version', `expected "0.1", got ${describe(version)}`);

  const http = section(raw.http, 'http', ['addr', 'host', 'debug']) ?? {};
  const addr = parseListenAddress(expectString(http.addr, 'http.addr', false) ?? DEFAULT_CONFIG.addr, 'http.addr');
  const host = expectString(http.host, 'http.host', false);
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
  const debug = section(http.debug, 'http.debug', ['addr']);
  const debugAddrText = debug && expectString(debug.addr, 'http.debug.addr', true);
  const debugAddr = debugAddrText ? parseListenAddress(debugAddrText, 'http.debug.addr') : undefined;

  let auth: RegistryConfig['auth'];
  const authRaw = section(raw.auth, 'auth', ['htpasswd']);
  if (authRaw) {
    const htpasswd = section(authRaw.htpasswd, 'auth.htpasswd', ['realm', 'path'], true)!;
    auth = { htpasswd: { realm: expectString(htpasswd.realm, 'auth.htpasswd.realm', true)!, path: expectString(htpasswd.path, 'auth.htpasswd.path', true)! } };
    if (/["\\]/.test(auth.htpasswd.realm)) throw new ConfigError('auth.htpasswd.realm', `must not contain quotes or backslashes, got ${describe(auth.htpasswd.realm)}`);
  }

  const storage = section(raw.storage, 'storage', ['filesystem', 'delete'], true)!;
  const filesystem = section(storage.filesystem, 'storage.filesystem', ['rootdirectory'], true)!;
  const rootDirectory = expectString(filesystem.rootdirectory, 'storage.filesystem.rootdirectory', true)!;
  const del = section(storage.delete, 'storage.delete', ['enabled']);
  const deleteEnabled = expectBoolean(del?.enabled, 'storage.delete.enabled', DEFAULT_CONFIG.deleteEnabled);

  return {
    version: '0.1',
    http: { addr, ...(host ? { host } : {}), ...(debugAddr ? { debugAddr } : {}) },
    ...(auth ? { auth } : {}),
    storage: { rootDirectory, deleteEnabled },
    notifications: parseNotificationsConfig(raw.notifications ?? undefined, 'notifications'),
  };
}

/** Reads and parses a config.yml; ConfigError (field = the file) when it is not readable YAML. */
export function loadRegistryConfig(file: string): RegistryConfig {
  return parseRegistryConfig(readConfigFile(file));
}
