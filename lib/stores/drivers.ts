import type BetterSqlite3 from 'better-sqlite3';
import type IORedis from 'ioredis';

/**
 * A store's client package is not installed. The SQLite and Redis clients are optional
 * peer dependencies: only a registry that configures their store needs them.
 */
export class MissingDriverError extends Error {
  override readonly name = 'MissingDriverError';
  constructor(
    /** The npm package to install, e.g. `better-sqlite3`. */
    readonly packageName: string,
    /** What needed it, e.g. `queue.type: sqlite`. */
    readonly neededBy: string,
  ) {
    super(`${neededBy} needs the package ${packageName}, which is not installed: npm install ${packageName}`);
  }
}

/**
 * Loads an optional peer dependency on first use, so that a registry that does not use
 * what needs it never needs the package; a missing one throws MissingDriverError naming
 * the package and what needed it. The stores, the broker sinks and htpasswd checks load
 * their clients through it.
 */
export function loadOptionalPackage<T>(packageName: string, neededBy: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(packageName) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${packageName}'`)) throw new MissingDriverError(packageName, neededBy);
    throw err;
  }
}

/** The `better-sqlite3` Database class. */
export function sqliteDriver(neededBy = 'the sqlite store'): typeof BetterSqlite3 {
  return loadOptionalPackage<typeof BetterSqlite3>('better-sqlite3', neededBy);
}

/** The `ioredis` client class. */
export function redisDriver(neededBy = 'the redis store'): typeof IORedis {
  const mod = loadOptionalPackage<typeof IORedis & { default?: typeof IORedis }>('ioredis', neededBy);
  return mod.default ?? mod;
}
