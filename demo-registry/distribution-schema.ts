// The field names of Distribution's configuration (2.8 and 3.x, the union of both) for the
// parts the demo accepts without applying them. Only names are checked there, so that a
// typo in an operator's config.yml is caught (with the nearest known name) even in a
// section that has no effect here; the sections the demo applies are read in config.ts.
import { ANY, type Shape } from './config-reader';

/** Every top-level field of a Distribution config.yml. */
export const TOP_LEVEL = [
  'version', 'log', 'loglevel', 'storage', 'auth', 'middleware', 'reporting', 'http', 'notifications',
  'redis', 'health', 'proxy', 'catalog', 'validation', 'policy', 'compatibility',
] as const;

export const LOG_FIELDS = ['level', 'formatter', 'fields', 'accesslog', 'hooks', 'reportcaller'] as const;

export const LOG_HOOK: Shape = [
  {
    type: ANY,
    disabled: ANY,
    levels: ANY,
    options: { smtp: { addr: ANY, username: ANY, password: ANY, insecure: ANY }, from: ANY, to: ANY },
  },
];

/** Storage drivers Distribution ships; only `filesystem` and `inmemory` exist here. */
export const STORAGE_DRIVERS = ['filesystem', 'inmemory', 's3', 's3-aws', 'azure', 'gcs', 'swift', 'oss'] as const;
/** The other fields of `storage`. */
export const STORAGE_PARAMETERS = ['delete', 'maintenance', 'cache', 'redirect', 'tag'] as const;

export const HTTP_FIELDS = [
  'addr', 'net', 'host', 'prefix', 'secret', 'relativeurls', 'draintimeout', 'tls', 'headers', 'debug', 'http2', 'h2c',
] as const;
export const TLS_FIELDS = ['certificate', 'key', 'clientcas', 'clientauth', 'minimumtls', 'ciphersuites', 'letsencrypt'] as const;
export const LETSENCRYPT: Shape = { cachefile: ANY, email: ANY, hosts: ANY, directoryurl: ANY };

export const AUTH_TOKEN: Shape = {
  realm: ANY, service: ANY, issuer: ANY, rootcertbundle: ANY, autoredirect: ANY, autoredirectpath: ANY, jwks: ANY, signingalgorithms: ANY,
};
export const AUTH_SILLY: Shape = { realm: ANY, service: ANY };

const MIDDLEWARE_LIST: Shape = [{ name: ANY, disabled: ANY, options: ANY }];
export const MIDDLEWARE: Shape = { registry: MIDDLEWARE_LIST, repository: MIDDLEWARE_LIST, storage: MIDDLEWARE_LIST };

export const REPORTING: Shape = {
  bugsnag: { apikey: ANY, releasestage: ANY, endpoint: ANY },
  newrelic: { licensekey: ANY, name: ANY, verbose: ANY },
};

export const REDIS: Shape = {
  // 2.8
  addr: ANY, password: ANY, db: ANY, dialtimeout: ANY, readtimeout: ANY, writetimeout: ANY,
  pool: { maxidle: ANY, maxactive: ANY, idletimeout: ANY, size: ANY, maxlifetime: ANY },
  tls: { enabled: ANY, certificate: ANY, key: ANY, clientcas: ANY },
  // 3.x (go-redis' universal options)
  addrs: ANY, clientname: ANY, protocol: ANY, username: ANY, sentinelusername: ANY, sentinelpassword: ANY,
  maxretries: ANY, minretrybackoff: ANY, maxretrybackoff: ANY, contexttimeoutenabled: ANY, poolfifo: ANY,
  poolsize: ANY, pooltimeout: ANY, minidleconns: ANY, maxidleconns: ANY, maxactiveconns: ANY, connmaxidletime: ANY,
  connmaxlifetime: ANY, maxredirects: ANY, readonly: ANY, routebylatency: ANY, routerandomly: ANY, mastername: ANY,
  disableindentity: ANY, identitysuffix: ANY, unstableresp3: ANY,
};

export const PROXY: Shape = { remoteurl: ANY, username: ANY, password: ANY, ttl: ANY, exec: { command: ANY, lifetime: ANY } };

export const VALIDATION: Shape = {
  enabled: ANY,
  disabled: ANY,
  manifests: {
    urls: { allow: ANY, deny: ANY },
    indexes: { platforms: ANY, platformlist: [{ architecture: ANY, os: ANY }] },
  },
};

export const POLICY: Shape = { repository: { classes: ANY } };

export const COMPATIBILITY: Shape = { schema1: { enabled: ANY, trustkey: ANY, signingkeyfile: ANY } };
