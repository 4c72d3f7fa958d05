import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';

/** The Redis the tests use; CI provides one at the default address. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

let reachable: boolean | undefined;

/**
 * Whether Redis answers PING at REDIS_URL. Synchronous (a child process asks), because
 * jest decides which describe blocks to skip before any async code runs.
 */
export function redisReachable(): boolean {
  if (reachable === undefined) {
    const { hostname, port } = new URL(REDIS_URL);
    const probe = `
      const s = require('node:net').connect(${Number(port) || 6379}, ${JSON.stringify(hostname)});
      s.setTimeout(1500, () => process.exit(1));
      s.on('error', () => process.exit(1));
      s.on('connect', () => s.write('PING\\r\\n'));
      s.on('data', (d) => process.exit(String(d).startsWith('+PONG') ? 0 : 1));`;
    reachable = spawnSync(process.execPath, ['-e', probe], { timeout: 3000 }).status === 0;
  }
  return reachable;
}

/**
 * `describe` for tests that need Redis. When Redis is not reachable it fails loudly on CI
 * (process.env.CI set) and elsewhere warns 'REDIS NOT REACHABLE' and skips the block.
 */
export function describeWithRedis(name: string, fn: () => void): void {
  if (redisReachable()) {
    describe(name, fn);
    return;
  }
  const message = `REDIS NOT REACHABLE at ${REDIS_URL}: start one (redis-server) or set REDIS_URL`;
  if (process.env.CI) {
    describe(name, () => {
      it('needs Redis', () => {
        throw new Error(`${message}; on CI the Redis tests must run, not be skipped`);
      });
    });
  } else {
    console.warn(`\n*** ${message}; SKIPPING "${name}" ***\n`);
    describe.skip(name, fn);
  }
}

/** A key prefix no other test run uses. */
export function uniquePrefix(label = 'test'): string {
  return `regnotify-${label}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under the prefix. */
export async function deletePrefix(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await client.quit();
  }
}
