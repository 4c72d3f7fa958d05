import { applyEnvOverrides } from '../../lib';
import { configFailure } from '../helpers/config-failure';

/** Freezes a document all the way down, so a test fails if the input is changed. */
function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}


describe('applyEnvOverrides', () => {
  it('overrides the field at a REGISTRY_<PATH>, as Distribution does', () => {
    const doc = frozen({ version: 0.1, http: { addr: ':5000', host: 'https://r.example' }, storage: { filesystem: { rootdirectory: '/a' } } });
    expect(applyEnvOverrides(doc, { REGISTRY_HTTP_ADDR: '127.0.0.1:5000', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/var/lib/registry' })).toEqual({
      version: 0.1,
      http: { addr: '127.0.0.1:5000', host: 'https://r.example' },
      storage: { filesystem: { rootdirectory: '/var/lib/registry' } },
    });
  });

  it('reads each value as a YAML scalar, as the file is read', () => {
    const out = applyEnvOverrides(
      {},
      {
        REGISTRY_A_BOOL: 'true',
        REGISTRY_A_FALSE: 'false',
        REGISTRY_A_INT: '5',
        REGISTRY_A_FLOAT: '0.25',
        REGISTRY_A_DURATION: '1s',
        REGISTRY_A_NANOS: '1000000000',
        REGISTRY_A_WORDS: 'Bearer x',
        REGISTRY_A_QUOTED: '"5"',
        REGISTRY_A_YES: 'yes', // YAML 1.2, as the file: a string, not a boolean
        REGISTRY_A_EMPTY: '',
        REGISTRY_A_LIST: '[application/octet-stream, application/json]',
      },
    );
    expect(out).toEqual({
      a: {
        bool: true,
        false: false,
        int: 5,
        float: 0.25,
        duration: '1s',
        nanos: 1_000_000_000,
        words: 'Bearer x',
        quoted: '5',
        yes: 'yes',
        empty: null,
        list: ['application/octet-stream', 'application/json'],
      },
    });
  });

  it("matches existing keys whatever their case and keeps the file's spelling", () => {
    const doc = frozen({ Notifications: { Events: { IncludeReferences: false } }, http: { Addr: ':5000' } });
    expect(applyEnvOverrides(doc, { REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES: 'true', REGISTRY_http_addr: ':6000' })).toEqual({
      Notifications: { Events: { IncludeReferences: true } },
      http: { Addr: ':6000' },
    });
  });

  it('creates the missing mappings along the path, in lower case', () => {
    expect(applyEnvOverrides(undefined, { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv' })).toEqual({
      storage: { filesystem: { rootdirectory: '/srv' } },
    });
    expect(applyEnvOverrides({ storage: null }, { REGISTRY_STORAGE_DELETE_ENABLED: 'true' })).toEqual({ storage: { delete: { enabled: true } } });
    expect(applyEnvOverrides({ notifications: { events: {} } }, { REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES: 'true' })).toEqual({
      notifications: { events: { includereferences: true } },
    });
  });

  it('returns a new document and leaves the input as it was', () => {
    const doc = frozen({ http: { addr: ':5000' }, notifications: { endpoints: [{ name: 'a', url: 'http://a/' }] } });
    const before = JSON.stringify(doc);
    const out = applyEnvOverrides(doc, { REGISTRY_HTTP_ADDR: ':1', REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://b/', REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'c' });
    expect(out).not.toBe(doc);
    expect(JSON.stringify(doc)).toBe(before);
    expect(out).toEqual({ http: { addr: ':1' }, notifications: { endpoints: [{ name: 'a', url: 'http://b/' }, { name: 'c' }] } });
  });

  it('ignores variables without the prefix, and takes another prefix', () => {
    const doc = { http: { addr: ':5000' } };
    expect(applyEnvOverrides(doc, { HTTP_ADDR: ':1', REGISTRYX_HTTP_ADDR: ':2', REGISTRY: 'x', PATH: '/bin' })).toEqual(doc);
    expect(applyEnvOverrides(doc, { MYREG_HTTP_ADDR: ':3', REGISTRY_HTTP_ADDR: ':4' }, 'MYREG')).toEqual({ http: { addr: ':3' } });
    expect(applyEnvOverrides(doc, { REGISTRY_HTTP_ADDR: undefined })).toEqual(doc);
  });

  describe('list items by index', () => {
    it('configures endpoints with no file at all', () => {
      expect(
        applyEnvOverrides(undefined, {
          REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL: 'http://two/',
          REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: 'http://one/',
          REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'one',
          REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME: 'two',
          REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION: 'Bearer x',
          REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '500ms',
        }),
      ).toEqual({
        notifications: {
          endpoints: [
            { name: 'one', url: 'http://one/', headers: { Authorization: ['Bearer x'] }, timeout: '500ms' },
            { name: 'two', url: 'http://two/' },
          ],
        },
      });
    });

    it('overrides a field of an item the file has, keeping its other fields', () => {
      const doc = frozen({ notifications: { endpoints: [{ name: 'a', url: 'http://a/', timeout: '1s' }, { name: 'b', url: 'http://b/' }] } });
      expect(applyEnvOverrides(doc, { REGISTRY_NOTIFICATIONS_ENDPOINTS_1_TIMEOUT: '5s', REGISTRY_NOTIFICATIONS_ENDPOINTS_2_NAME: 'c' })).toEqual({
        notifications: {
          endpoints: [
            { name: 'a', url: 'http://a/', timeout: '1s' },
            { name: 'b', url: 'http://b/', timeout: '5s' },
            { name: 'c' },
          ],
        },
      });
    });

    it('applies indexes in numeric order, so item 10 follows item 9', () => {
      const env: Record<string, string> = {};
      for (let i = 0; i <= 11; i++) env[`REGISTRY_NOTIFICATIONS_ENDPOINTS_${i}_NAME`] = `e${i}`;
      const out = applyEnvOverrides({}, env) as { notifications: { endpoints: { name: string }[] } };
      expect(out.notifications.endpoints.map((e) => e.name)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10', 'e11']);
    });

    it('refuses a gap, naming the variable', () => {
      const err = configFailure(() =>
        applyEnvOverrides({ notifications: { endpoints: [{ name: 'a', url: 'http://a/' }] } }, { REGISTRY_NOTIFICATIONS_ENDPOINTS_3_URL: 'http://x/' }),
      );
      expect(err.field).toBe('REGISTRY_NOTIFICATIONS_ENDPOINTS_3_URL');
      expect(err.message).toBe(
        'REGISTRY_NOTIFICATIONS_ENDPOINTS_3_URL: index 3 is past the end of notifications.endpoints, which has 1 item; the next new one is 1',
      );
      expect(configFailure(() => applyEnvOverrides({}, { REGISTRY_NOTIFICATIONS_ENDPOINTS_1_URL: 'http://x/' })).message).toContain(
        'index 1 is past the end of notifications.endpoints, which has 0 items',
      );
    });
  });

  describe('headers', () => {
    it('sets the list [value], under the canonical name when the file has none', () => {
      const out = applyEnvOverrides(
        { notifications: { endpoints: [{ name: 'a', url: 'http://a/' }] } },
        { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION: 'Bearer s3cret', 'REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_X-API-KEY': 'k' },
      );
      expect(out).toEqual({
        notifications: { endpoints: [{ name: 'a', url: 'http://a/', headers: { Authorization: ['Bearer s3cret'], 'X-Api-Key': ['k'] } }] },
      });
    });

    it("replaces the file's values under the file's spelling", () => {
      const doc = frozen({ notifications: { endpoints: [{ name: 'a', url: 'http://a/', headers: { authorization: ['Bearer old', 'Bearer older'], Other: ['o'] } }] } });
      expect(applyEnvOverrides(doc, { REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS_AUTHORIZATION: 'Bearer new' })).toEqual({
        notifications: { endpoints: [{ name: 'a', url: 'http://a/', headers: { authorization: ['Bearer new'], Other: ['o'] } }] },
      });
    });

    it('takes the value as written, not as YAML', () => {
      const out = applyEnvOverrides({}, { 'REGISTRY_HTTP_HEADERS_X-ENABLED': 'true', 'REGISTRY_HTTP_HEADERS_X-TOKEN': 'abc #not a comment' });
      expect(out).toEqual({ http: { headers: { 'X-Enabled': ['true'], 'X-Token': ['abc #not a comment'] } } });
    });
  });

  describe('a variable that cannot apply is a ConfigError naming it', () => {
    it.each<[string, unknown, Record<string, string>, string]>([
      ['a field below a scalar', { http: { addr: ':5000' } }, { REGISTRY_HTTP_ADDR_PORT: '1' }, 'REGISTRY_HTTP_ADDR_PORT: cannot set PORT below http.addr, which is string ":5000", not a mapping'],
      ['a field below a number', { version: 0.1 }, { REGISTRY_VERSION_X: '1' }, 'REGISTRY_VERSION_X: cannot set X below version, which is number 0.1'],
      ['a word where a list takes an index', { notifications: { endpoints: [] } }, { REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL: 'http://x/' }, 'REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL: notifications.endpoints is a list; expected an index (0, 1, …) where "FIRST" is'],
      ['a document that is not a mapping', 'text', { REGISTRY_HTTP_ADDR: ':1' }, 'REGISTRY_HTTP_ADDR: cannot set HTTP_ADDR below the document, which is string "text"'],
      ['an empty segment', {}, { REGISTRY_HTTP__ADDR: ':1' }, 'REGISTRY_HTTP__ADDR: empty path segment'],
      ['a trailing underscore', {}, { REGISTRY_: ':1' }, 'REGISTRY_: empty path segment'],
      ['a value that is not YAML', {}, { REGISTRY_HTTP_ADDR: '*alias' }, 'REGISTRY_HTTP_ADDR: cannot read "*alias" as a YAML value'],
    ])('%s', (_kind, doc, env, message) => {
      const err = configFailure(() => applyEnvOverrides(doc, env));
      expect(err.field).toBe(Object.keys(env)[0]);
      expect(err.message).toContain(message);
    });
  });
});
