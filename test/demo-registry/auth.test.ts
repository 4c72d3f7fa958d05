import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../lib';
import { loadHtpasswd, parseBasicAuth } from '../../demo-registry/auth';
import { registryFixture, type RegistryFixture } from './registry-fixture';

const htpasswdLine = (user: string, password: string, ...flags: string[]) =>
  execFileSync('/usr/bin/htpasswd', ['-nb', ...flags, user, password], { encoding: 'utf8' }).trim();

let f: RegistryFixture;
let file: string;
beforeAll(async () => {
  const base = await registryFixture();
  file = path.join(base.dir, 'htpasswd');
  writeFileSync(file, `# users\n${htpasswdLine('alice', 'pw', '-B')}\n${htpasswdLine('bob', 's3cret', '-B', '-C', '4')}\n`);
  f = await registryFixture({ auth: { realm: 'test realm', path: file } });
  f.cleanup = ((inner, outer) => async () => {
    await inner();
    await outer();
  })(f.cleanup, base.cleanup);
});
afterAll(() => f.cleanup());

describe('htpasswd files', () => {
  it('reads bcrypt entries made by htpasswd -B ($2y$), skipping comments', () => {
    const users = loadHtpasswd(file);
    expect([...users.keys()]).toEqual(['alice', 'bob']);
    expect(users.get('alice')).toMatch(/^\$2y\$05\$/);
  });

  it('refuses entries that are not bcrypt, naming the file and line', () => {
    const md5 = path.join(f.dir, 'md5');
    writeFileSync(md5, `${htpasswdLine('alice', 'pw', '-B')}\n${htpasswdLine('carol', 'pw', '-m')}\n`);
    expect(() => loadHtpasswd(md5)).toThrow(ConfigError);
    expect(() => loadHtpasswd(md5)).toThrow(/auth\.htpasswd\.path: .*md5 line 2: expected "user:bcrypt-hash".*"carol:…"/);
  });

  it('refuses a missing file', () => {
    expect(() => loadHtpasswd(path.join(f.dir, 'nope'))).toThrow(/auth\.htpasswd\.path: cannot read htpasswd file/);
  });

  it('parses Basic credentials, passwords with colons included', () => {
    const header = 'Basic ' + Buffer.from('bob:a:b').toString('base64');
    expect(parseBasicAuth(header)).toEqual({ user: 'bob', password: 'a:b' });
    expect(parseBasicAuth('Bearer x')).toBeUndefined();
    expect(parseBasicAuth(undefined)).toBeUndefined();
  });
});

describe('Basic authentication', () => {
  it('challenges a request without credentials with 401, the realm and an UNAUTHORIZED body', async () => {
    const res = await f.client.get('/v2/');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="test realm"');
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
  });

  it('refuses a wrong password and an unknown user', async () => {
    expect((await f.client.get('/v2/').auth('alice', 'wrong')).status).toBe(401);
    expect((await f.client.get('/v2/').auth('mallory', 'pw')).status).toBe(401);
    expect((await f.client.get('/v2/').set('Authorization', 'Basic !!!')).status).toBe(401);
  });

  it('admits valid users, repeatedly', async () => {
    expect((await f.client.get('/v2/').auth('alice', 'pw')).status).toBe(200);
    expect((await f.client.get('/v2/').auth('alice', 'pw')).status).toBe(200);
    expect((await f.client.get('/v2/_catalog').auth('bob', 's3cret')).body).toEqual({ repositories: [] });
    // A cached success must not let another password in.
    expect((await f.client.get('/v2/').auth('alice', 'pw2')).status).toBe(401);
  });
});
