import bcrypt from 'bcryptjs';
import { bcryptCost, dummyHash, FailedLogins } from '../../demo-registry/auth';
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
