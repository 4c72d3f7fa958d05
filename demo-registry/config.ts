import { ConfigError, parseNotificationsConfig, readConfigFile, type NotificationsConfig } from '../lib';
import { Section, shown as describe } from './config-reader';

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
  const raw = Section.of(value, 'config', ['version', 'http', 'auth', 'storage', 'notifications'], true)!;
  const version = raw.value('version');
  if (version !== '0.1' && version !== 0.1) throw new ConfigError('version', `expected "0.1", got ${describe(version)}`);

  const http = raw.section('http', ['addr', 'host', 'debug']);
  const addr = parseListenAddress(http?.string('addr') ?? DEFAULT_CONFIG.addr, 'http.addr');
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
  const debugAddrText = http?.section('debug', ['addr'])?.string('addr', true);
  const debugAddr = debugAddrText ? parseListenAddress(debugAddrText, 'http.debug.addr') : undefined;

  let auth: RegistryConfig['auth'];
  const htpasswd = raw.section('auth', ['htpasswd'])?.section('htpasswd', ['realm', 'path'], true);
  if (htpasswd) {
    auth = { htpasswd: { realm: htpasswd.string('realm', true)!, path: htpasswd.string('path', true)! } };
    if (/["\\]/.test(auth.htpasswd.realm)) throw new ConfigError('auth.htpasswd.realm', `must not contain quotes or backslashes, got ${describe(auth.htpasswd.realm)}`);
  }

  const storage = raw.section('storage', ['filesystem', 'delete'], true)!;
  const rootDirectory = storage.section('filesystem', ['rootdirectory'], true)!.string('rootdirectory', true)!;
  const deleteEnabled = storage.section('delete', ['enabled'])?.boolean('enabled', DEFAULT_CONFIG.deleteEnabled) ?? DEFAULT_CONFIG.deleteEnabled;

  return {
    version: '0.1',
    http: { addr, ...(host ? { host } : {}), ...(debugAddr ? { debugAddr } : {}) },
    ...(auth ? { auth } : {}),
    storage: { rootDirectory, deleteEnabled },
    notifications: parseNotificationsConfig(raw.value('notifications'), 'notifications'),
  };
}

/** Reads and parses a config.yml; ConfigError (field = the file) when it is not readable YAML. */
export function loadRegistryConfig(file: string): RegistryConfig {
  return parseRegistryConfig(readConfigFile(file));
}
