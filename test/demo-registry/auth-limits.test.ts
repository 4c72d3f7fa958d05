import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import express from 'express';
import request from 'supertest';
import { bcryptCost, dummyHash, FailedLogins, htpasswdAuth } from '../../demo-registry/auth';
import { BcryptPool } from '../../demo-registry/bcrypt-pool';

describe('FailedLogins', () => {
  it('blocks a client at maxFailures within the window, until the oldest of them leaves it', () => {
    let now = 1_000_000;
    const limits = new FailedLogins(3, 60_000, () => now);
    limits.fail('a');
    now += 10_000;
    limits.fail('a');
    expect(limits.blockedForMs('a')).toBe(0);
    now += 10_000;
    limits.fail('a');
    // The first failure was 20s ago: it leaves the window in 40s.
    expect(limits.blockedForMs('a')).toBe(40_000);
    expect(limits.blockedForMs('b')).toBe(0);
    now += 40_000;
    expect(limits.blockedForMs('a')).toBe(0);
    // The two later failures still count: one more blocks again, until the second leaves the window.
    limits.fail('a');
    expect(limits.blockedForMs('a')).toBe(10_000);
  });

  it('remembers at most maxClients addresses, forgetting the least recently failing', () => {
    const limits = new FailedLogins(1, 60_000, () => 0, 2);
    limits.fail('a');
    limits.fail('b');
    limits.fail('a');
    limits.fail('c');
    expect(['a', 'b', 'c'].map((c) => limits.blockedForMs(c) > 0)).toEqual([true, false, true]);
  });
});

describe('dummyHash', () => {
  it('is a well-formed bcrypt hash of the given cost that the password does not match', () => {
    const hash = dummyHash(6);
    expect(hash).toMatch(/^\$2[aby]\$06\$[./A-Za-z0-9]{53}$/);
    expect(bcryptCost(hash)).toBe(6);
    expect(bcrypt.compareSync('', hash)).toBe(false);
    expect(dummyHash(6)).not.toBe(hash);
  });
});

describe('BcryptPool', () => {
  let pool: BcryptPool;
  afterEach(() => pool.close());

  it('compares in its threads, at most size at once, and counts each comparison', async () => {
    pool = new BcryptPool({ size: 2 });
    const hash = bcrypt.hashSync('right', 4);
    const answers = Promise.all(['right', 'wrong', 'right', 'wrong', 'right'].map((p) => pool.compare(p, hash)));
    expect(pool.waiting).toBe(3);
    expect(await answers).toEqual([true, false, true, false, true]);
    expect(pool.comparisons).toBe(5);
    expect(pool.waiting).toBe(0);
  });

  it('refuses comparisons once closed', async () => {
    pool = new BcryptPool({ size: 1 });
    await pool.close();
    await expect(pool.compare('x', dummyHash(4))).rejects.toThrow('bcrypt pool closed');
  });
});

describe('htpasswdAuth failed-login limit', () => {
  let dir: string;
  let pool: BcryptPool;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'auth-limits-'));
    writeFileSync(path.join(dir, 'htpasswd'), `alice:${bcrypt.hashSync('right', 4)}\n`);
    pool = new BcryptPool({ size: 1 });
  });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function app(trustProxy: boolean) {
    const a = express();
    if (trustProxy) a.set('trust proxy', 'loopback');
    a.use(htpasswdAuth({ realm: 'test', path: path.join(dir, 'htpasswd'), pool, maxFailures: 2 }));
    a.get('/v2/', (_req, res) => res.json({}));
    return a;
  }

  const tryLogin = (a: express.Express, from: string, password = 'wrong') =>
    request(a).get('/v2/').set('X-Forwarded-For', from).auth('alice', password).then((r) => r.status);

  it('counts per client address as Express sees it: behind a trusted proxy, the forwarded one', async () => {
    const a = app(true);
    expect([await tryLogin(a, '10.0.0.1'), await tryLogin(a, '10.0.0.1')]).toEqual([401, 401]);
    expect(await tryLogin(a, '10.0.0.1', 'right')).toBe(429);
    // Another client behind the same proxy is not blocked by the first one's failures.
    expect(await tryLogin(a, '10.0.0.2', 'right')).toBe(200);
  });

  it('ignores forwarded headers when the app does not trust a proxy', async () => {
    const a = app(false);
    expect([await tryLogin(a, '10.0.0.1'), await tryLogin(a, '10.0.0.2')]).toEqual([401, 401]);
    // Both came from this test's own address: a forged header does not buy more guesses.
    expect(await tryLogin(a, '10.0.0.3', 'right')).toBe(429);
  });
});
