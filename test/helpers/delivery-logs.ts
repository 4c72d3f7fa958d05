// The delivery log kinds, for tests of the contract every kind honours: each test opens
// the logs it needs (SQLite: a new file each; Redis: a new prefix each, deleted after the
// suite) and they are closed after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DeliveryLog, DeliveryLogLimits } from '../../lib/stores/delivery-log';
import { MemoryDeliveryLog } from '../../lib/stores/memory-delivery-log';
import { RedisDeliveryLog } from '../../lib/stores/redis-delivery-log';
import { SqliteDeliveryLog } from '../../lib/stores/sqlite-delivery-log';
import { deletePrefix, describeWithRedis, REDIS_URL, uniquePrefix } from './redis';

/** A new log of the kind under test, with these limits; closed after the test. */
export type OpenLog = (limits?: Partial<DeliveryLogLimits>) => Promise<DeliveryLog>;

function withLogs(make: (limits: Partial<DeliveryLogLimits>) => Promise<DeliveryLog>, tests: (open: OpenLog) => void): void {
  const logs: DeliveryLog[] = [];
  afterEach(async () => {
    await Promise.all(logs.splice(0).map((l) => l.close()));
  });
  tests(async (limits = {}) => {
    const log = await make(limits);
    logs.push(log);
    return log;
  });
}

/** Declares `tests` once per kind of delivery log, in blocks named `memory <title>`, `sqlite <title>`, `redis <title>`. */
export function describeEachLog(title: string, tests: (open: OpenLog) => void): void {
  describe(`memory ${title}`, () => withLogs(async (limits) => new MemoryDeliveryLog(limits), tests));
  describe(`sqlite ${title}`, () => {
    let dir: string;
    let files = 0;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'log-contract-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    withLogs(async (limits) => new SqliteDeliveryLog({ path: path.join(dir, `log-${++files}.db`), ...limits }), tests);
  });
  describeWithRedis(`redis ${title}`, () => {
    const prefixes: string[] = [];
    afterAll(async () => {
      await Promise.all(prefixes.map(deletePrefix));
    });
    withLogs(async (limits) => {
      const prefix = uniquePrefix('log');
      prefixes.push(prefix);
      const log = new RedisDeliveryLog({ url: REDIS_URL, prefix, ...limits });
      await log.open();
      return log;
    }, tests);
  });
}
