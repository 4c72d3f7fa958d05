import type Redis from 'ioredis';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import { connectionName, describeRedisAddress, RedisConnection, shareRedisConnection, type RedisLease } from './redis-connections';
import {
  ATTEMPTS_PER_EVENT,
  feedItem,
  idAt,
  matches,
  pageOf,
  parseCursor,
  type AttemptRecord,
  type DeliveryLog,
  type DeliveryLogLimits,
  type EventQuery,
  type EventState,
  type FeedItem,
  type FeedMark,
  type FeedScan,
  type LogEntry,
  type LoggedEvent,
  type Page,
  type Paged,
} from './delivery-log';
import { StoreClosedError, StoreOpenError } from './queue-store';

export interface RedisDeliveryLogOptions extends Partial<DeliveryLogLimits> {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. */
  url?: string;
  /** A client to use instead of `url`; it stays open on `close()`. */
  client?: Redis;
  /** Prefix of every key, as the queues' (`<prefix>:log:…`). @default 'regnotify' */
  prefix?: string;
  /** How long `open()` waits for PING, in ms. @default 2000 (2s) */
  connectTimeoutMs?: number;
}

/** Candidates read from an index per round trip of a search. */
const SEARCH_BATCH = 200;
/** Most events a search looks at before it answers with what it found and a cursor to go on from. */
const SEARCH_BUDGET = 5000;

/** Counts an attempt on an event's hash, when the event is logged: its count and its latest attempt ids. */
const COUNT_ATTEMPT = `
if redis.call('HEXISTS', KEYS[1], 'body') == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local ids = redis.call('HGET', KEYS[1], 'aids') or ''
if ids == '' then ids = ARGV[1] else ids = ids .. ' ' .. ARGV[1] end
if n > tonumber(ARGV[2]) then ids = string.sub(ids, string.find(ids, ' ') + 1) end
redis.call('HSET', KEYS[1], 'aids', ids)
return n`;

/**
 * Logs an event that came in (ARGV: seq, state, attempts, attempt ids, body, ttl ms): a
 * new one whole; a replayed one keeps its seq and adds to its attempts.
 */
const ADD_EVENT = `
if redis.call('HEXISTS', KEYS[1], 'body') == 1 then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
  if tonumber(ARGV[3]) > 0 then
    redis.call('HINCRBY', KEYS[1], 'attempts', ARGV[3])
    local ids = redis.call('HGET', KEYS[1], 'aids') or ''
    if ids == '' then ids = ARGV[4] else ids = ids .. ' ' .. ARGV[4] end
    redis.call('HSET', KEYS[1], 'aids', ids)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'state', ARGV[2], 'attempts', ARGV[3], 'aids', ARGV[4], 'body', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1`;

/** Sets an event's state, when the event is logged. */
const SET_STATE = `
if redis.call('HEXISTS', KEYS[1], 'body') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
return 1`;

/**
 * Lua: the members of the sorted set KEYS[1] past the retention window (scored below
 * ARGV[2]) or over the count limit (ARGV[1]), oldest first. Both trims start with it.
 */
const PAST_LIMITS_LUA = `
local function pastLimits()
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
  local over = redis.call('ZCARD', KEYS[1]) - #gone - tonumber(ARGV[1])
  if over > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], #gone, #gone + over - 1)) do gone[#gone + 1] = m end
  end
  return gone
end`;

/**
 * Keeps an endpoint's events within the retention window and the count limit: removes
 * the oldest from its index (KEYS[1]) and deletes their hashes (ARGV[3] .. id).
 */
const TRIM_EVENTS = `${PAST_LIMITS_LUA}
local gone = pastLimits()
for i = 1, #gone, 500 do
  local part = {}
  for j = i, math.min(i + 499, #gone) do
    part[#part + 1] = gone[j]
    redis.call('DEL', ARGV[3] .. gone[j])
  end
  redis.call('ZREM', KEYS[1], unpack(part))
end
return #gone`;

/**
 * Keeps the feed (KEYS[1], members `<id> <topic> <json>` scored by seq; KEYS[2] the seq
 * of each id) within the count limit (ARGV[1]) and the retention window (ARGV[2], a seq).
 */
const FEED_TRIM_LUA = `
local gone = pastLimits()
for i = 1, #gone, 500 do
  local members, ids = {}, {}
  for j = i, math.min(i + 499, #gone) do
    members[#members + 1] = gone[j]
    ids[#ids + 1] = string.sub(gone[j], 1, string.find(gone[j], ' ', 1, true) - 1)
  end
  redis.call('ZREM', KEYS[1], unpack(members))
  redis.call('HDEL', KEYS[2], unpack(ids))
end`;

/**
 * Adds events to the feed (ARGV: limit, cutoff, ttl ms, lowest seq, then id, topic, json
 * per event). Each takes a seq above every seq the feed holds, given here, in one step:
 * so replicas writing at once never make a seq appear below one a reader has passed.
 * Seqs are formatted by hand: Lua would print a 16-digit number with 14 digits.
 */
const FEED_ADD = `${PAST_LIMITS_LUA}
local seq = tonumber(ARGV[4])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= seq then seq = tonumber(top[2]) + 1 end
local added = 0
for i = 5, #ARGV, 3 do
  local s = string.format('%.0f', seq)
  if redis.call('HSETNX', KEYS[2], ARGV[i], s) == 1 then
    redis.call('ZADD', KEYS[1], s, ARGV[i] .. ' ' .. ARGV[i + 1] .. ' ' .. ARGV[i + 2])
    seq = seq + 1
    added = added + 1
  end
end
${FEED_TRIM_LUA}
if added > 0 then redis.call('PUBLISH', KEYS[1] .. ':written', '') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

const FEED_TRIM = `${PAST_LIMITS_LUA}
${FEED_TRIM_LUA}
return 1`;

/** Rows of the feed read per round trip when topics filter them. */
const FEED_CHUNK = 500;

type LogClient = Redis & {
  feedAdd(feed: string, ids: string, ...args: (string | number)[]): Promise<number>;
  feedTrim(feed: string, ids: string, limit: number, cutoff: number): Promise<number>;
  logAddEvent(key: string, seq: number, state: string, attempts: number, aids: string, body: string, ttlMs: number): Promise<number>;
  logCountAttempt(key: string, attemptId: string, keep: number): Promise<number>;
  logSetState(key: string, state: string): Promise<number>;
  logTrimEvents(key: string, limit: number, cutoff: number, hashPrefix: string): Promise<number>;
};

/**
 * The delivery log in Redis, shared by every replica: what one writes, any reads. Per
 * endpoint a sorted set of attempts (scored by id) and a sorted set of event ids (scored
 * by seq) over one hash per event; sorted sets by digest and by repository index every
 * endpoint's events. The pull feed is one sorted set of `<id> <topic> <json>` by seq, a
 * hash of seqs by id and a hash of consumers' cursors; its writes are published on
 * `<prefix>:log:feed:written`. Every key expires after the retention window when nothing
 * touches it.
 */
export class RedisDeliveryLog implements DeliveryLog {
  readonly description: string;
  /** A delivery in the write that adds its event spares the commands that change its hash. */
  readonly holdsYoungEvents = true;
  private readonly connection: RedisConnection;
  /** The shared connection this log uses, when it made it from `url`. */
  private readonly lease?: RedisLease;
  /** Clients the log's scripts are defined on (a connection makes a new client after a failed first open). */
  private readonly scripted = new WeakSet<Redis>();
  private readonly limits: DeliveryLogLimits;
  private readonly base: string;
  private readonly connectTimeoutMs: number;
  /** A connection of its own that hears of feed writes (`watchFeed`), once one is asked for. */
  private subscriber?: Redis;
  private readonly feedWatchers = new Set<() => void>();
  /** Endpoints this process wrote for: `trim()` looks after them. */
  private readonly seen = new Set<string>();
  private closed = false;
  /** The server, as errors name it (no credentials). */
  private readonly location: string;

  constructor(options: RedisDeliveryLogOptions) {
    const prefix = options.prefix ?? DEFAULTS.queue.prefix;
    this.base = `${prefix}:log`;
    this.limits = {
      attempts: options.attempts ?? DEFAULTS.log.attempts,
      events: options.events ?? DEFAULTS.log.events,
      retentionMs: options.retentionMs ?? DEFAULTS.log.retentionMs,
    };
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.stores.redisConnectTimeoutMs;
    if (options.client) {
      this.connection = RedisConnection.borrow(options.client);
    } else {
      // Its own connection, shared by every log on this server with this prefix: a large
      // log write then never holds up a queue's acknowledgement on the queues' connection.
      this.lease = shareRedisConnection(options.url!, connectionName(prefix, 'log'), 'the redis delivery log');
      this.connection = this.lease.connection;
    }
    this.description = `redis log ${this.base}`;
    this.location = describeRedisAddress(options.client, options.url);
  }

  private attemptsKey = (endpoint: string) => `${this.base}:a:${endpoint}`;
  private eventsKey = (endpoint: string) => `${this.base}:ev:${endpoint}`;
  private eventKey = (endpoint: string, id: string) => `${this.base}:e:${endpoint}:${id}`;
  private digestKey = (digest: string) => `${this.base}:digest:${digest}`;
  private repositoryKey = (repository: string) => `${this.base}:repo:${repository}`;
  private readonly feedKey = () => `${this.base}:feed`;
  private readonly feedIdsKey = () => `${this.base}:feed:ids`;
  private readonly consumersKey = () => `${this.base}:feed:consumers`;

  async open(): Promise<void> {
    if (this.closed) throw new StoreClosedError(this.description, 'open');
    try {
      await this.client();
    } catch (err) {
      throw new StoreOpenError('redis', this.location, `delivery log: ${(err as Error).message}`, { cause: err });
    }
  }

  async write(entries: readonly LogEntry[]): Promise<void> {
    const client = await this.ready('write');
    if (entries.length === 0) return;
    const { attempts: maxAttempts, events: maxEvents, retentionMs } = this.limits;
    const cutoff = idAt(Date.now() - retentionMs);
    const batch = client.pipeline() as unknown as LogClient & { exec(): Promise<[Error | null, unknown][] | null> };
    const touched = { attempts: new Set<string>(), events: new Set<string>(), indexes: new Set<string>() };
    // Events that came in this batch: their attempts and later states are folded into one
    // command, since a quick delivery puts the whole life of an event in one batch.
    const fresh = new Map<string, { seq: number; endpoint: string; event: Event; state: EventState; attempts: number; aids: string[] }>();
    for (const entry of entries) {
      if (entry.kind === 'feed') {
        if (maxEvents === 0 || entry.events.length === 0) continue;
        const args: (string | number)[] = [maxEvents, cutoff, retentionMs, entry.seq];
        for (const e of entry.events) {
          const item = feedItem(e, 0);
          args.push(item.id, item.topic, item.body);
        }
        batch.feedAdd(this.feedKey(), this.feedIdsKey(), ...args);
        continue;
      }
      if (entry.kind === 'attempt') {
        const a = entry.attempt;
        this.seen.add(a.endpoint);
        if (maxAttempts > 0) {
          batch.zadd(this.attemptsKey(a.endpoint), a.id, JSON.stringify(a));
          touched.attempts.add(a.endpoint);
        }
        if (a.test || maxEvents === 0) continue;
        for (const id of a.eventIds) {
          const row = fresh.get(`${a.endpoint}\n${id}`);
          if (!row) {
            batch.logCountAttempt(this.eventKey(a.endpoint, id), a.id, ATTEMPTS_PER_EVENT);
            continue;
          }
          row.attempts++;
          row.aids.push(a.id);
          if (row.aids.length > ATTEMPTS_PER_EVENT) row.aids.shift();
        }
        continue;
      }
      if (maxEvents === 0) continue;
      const ep = entry.endpoint;
      this.seen.add(ep);
      entry.events.forEach((e, i) => {
        const key = `${ep}\n${e.id}`;
        const row = fresh.get(key);
        if (row) row.state = entry.state;
        else if (entry.state === 'pending') fresh.set(key, { seq: entry.seq + i, endpoint: ep, event: e, state: 'pending', attempts: 0, aids: [] });
        else batch.logSetState(this.eventKey(ep, e.id), entry.state);
      });
    }
    for (const row of fresh.values()) {
      const { endpoint: ep, event: e, seq } = row;
      touched.events.add(ep);
      // The Redis queue's JSON of the event, made when it was appended: encoded once.
      batch.logAddEvent(this.eventKey(ep, e.id), seq, row.state, row.attempts, row.aids.join(' '), storedEventJson(e), retentionMs);
      batch.zadd(this.eventsKey(ep), 'NX', seq, e.id);
      const member = `${ep} ${e.id}`;
      for (const index of [e.target.digest && this.digestKey(e.target.digest), e.target.repository && this.repositoryKey(e.target.repository)]) {
        if (!index) continue;
        batch.zadd(index, 'NX', seq, member);
        touched.indexes.add(index);
      }
    }
    for (const index of touched.indexes) {
      batch.zremrangebyscore(index, '-inf', `(${cutoff}`);
      batch.pexpire(index, retentionMs);
    }
    for (const ep of touched.attempts) {
      const key = this.attemptsKey(ep);
      batch.zremrangebyscore(key, '-inf', `(${cutoff}`);
      batch.zremrangebyrank(key, 0, -(maxAttempts + 1));
      batch.pexpire(key, retentionMs);
    }
    for (const ep of touched.events) {
      batch.logTrimEvents(this.eventsKey(ep), maxEvents, cutoff, `${this.base}:e:${ep}:`);
      batch.pexpire(this.eventsKey(ep), retentionMs);
    }
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw new Error(`${this.description}: log entries not written: ${failed[0]!.message}`);
  }

  async attempts(endpoint: string, page: Page): Promise<Paged<AttemptRecord>> {
    const client = await this.ready('read');
    const before = parseCursor(page.cursor);
    const cutoff = idAt(Date.now() - this.limits.retentionMs);
    const rows = await client.zrevrangebyscore(this.attemptsKey(endpoint), before === undefined ? '+inf' : `(${before}`, cutoff, 'LIMIT', 0, page.limit + 1);
    return pageOf(rows.map((r) => JSON.parse(r) as AttemptRecord), page.limit, (a) => a.id);
  }

  async events(q: EventQuery): Promise<Paged<LoggedEvent>> {
    const client = await this.ready('search');
    const before = parseCursor(q.cursor) ?? Number.MAX_SAFE_INTEGER;
    const from = Math.max(idAt(Date.now() - this.limits.retentionMs), q.fromMs === undefined ? 0 : idAt(q.fromMs));
    let upper = Math.min(before, q.toMs === undefined ? Number.MAX_SAFE_INTEGER : idAt(q.toMs));
    if (q.id !== undefined) {
      const found = (await this.event(q.id, q.endpoints)).filter((e) => Number(e.seq) < upper && Number(e.seq) >= from && matches(e, q));
      return pageOf(found.sort((a, b) => Number(b.seq) - Number(a.seq)), q.limit, (e) => e.seq);
    }
    // The smallest index that holds every match: by digest, by repository, else each endpoint's.
    const wanted = new Set(q.endpoints);
    const split = (member: string) => {
      const at = member.lastIndexOf(' ');
      return { endpoint: member.slice(0, at), id: member.slice(at + 1) };
    };
    const sources =
      q.digest !== undefined
        ? [{ key: this.digestKey(q.digest), parse: split }]
        : q.repository !== undefined
          ? [{ key: this.repositoryKey(q.repository), parse: split }]
          : q.endpoints.map((endpoint) => ({ key: this.eventsKey(endpoint), parse: (id: string) => ({ endpoint, id }) }));
    // Without other filters every event read is on the page: read no more than it holds.
    const filtered = q.tag !== undefined || q.action !== undefined || q.state !== undefined;
    const per = sources.length > 1 && !filtered ? Math.min(SEARCH_BATCH, q.limit + 1) : SEARCH_BATCH;
    const items: LoggedEvent[] = [];
    let examined = 0;
    let exhausted = false;
    while (items.length <= q.limit && examined < SEARCH_BUDGET && !exhausted) {
      const read = client.pipeline();
      for (const s of sources) read.zrevrangebyscore(s.key, `(${upper}`, from, 'WITHSCORES', 'LIMIT', 0, per);
      const merged: { endpoint: string; id: string; score: number }[] = [];
      let full = false;
      for (const [i, [err, rows]] of ((await read.exec()) ?? []).entries()) {
        if (err) throw err;
        const list = rows as string[];
        if (list.length === 2 * per) full = true;
        for (let j = 0; j < list.length; j += 2) merged.push({ ...sources[i].parse(list[j]), score: Number(list[j + 1]) });
      }
      merged.sort((a, b) => b.score - a.score);
      // The first `per` of the merge come before anything a source holds below what it gave.
      const round = merged.slice(0, per);
      exhausted = !full && merged.length <= per;
      const fetch = client.pipeline();
      for (const c of round) fetch.hgetall(this.eventKey(c.endpoint, c.id));
      const hashes = round.length > 0 ? ((await fetch.exec()) ?? []) : [];
      for (const [i, c] of round.entries()) {
        examined++;
        upper = c.score;
        if (!wanted.has(c.endpoint)) continue;
        const e = this.decode(c.endpoint, hashes[i][1] as Record<string, string>);
        if (e && matches(e, q)) items.push(e);
        if (items.length > q.limit) break;
      }
    }
    if (items.length > q.limit) return pageOf(items, q.limit, (e) => e.seq);
    return { items, next: exhausted ? null : String(upper) };
  }

  async event(id: string, endpoints: readonly string[]): Promise<LoggedEvent[]> {
    const client = await this.ready('read');
    const cutoff = idAt(Date.now() - this.limits.retentionMs);
    const read = client.pipeline();
    for (const endpoint of endpoints) read.hgetall(this.eventKey(endpoint, id));
    const results = (await read.exec()) ?? [];
    return endpoints.flatMap((endpoint, i) => {
      const e = this.decode(endpoint, results[i][1] as Record<string, string>);
      return e && Number(e.seq) >= cutoff ? [e] : [];
    });
  }

  async eventAttempts(endpoint: string, eventId: string): Promise<AttemptRecord[]> {
    const client = await this.ready('read');
    const ids = ((await client.hget(this.eventKey(endpoint, eventId), 'aids')) ?? '').split(' ').filter(Boolean);
    if (ids.length === 0) return [];
    const read = client.pipeline();
    for (const id of ids) read.zrangebyscore(this.attemptsKey(endpoint), id, id);
    const results = (await read.exec()) ?? [];
    return results.flatMap(([, rows]) => (rows as string[]).map((r) => JSON.parse(r) as AttemptRecord).filter((a) => ids.includes(a.id)));
  }

  async trim(): Promise<void> {
    const client = await this.ready('trim');
    const cutoff = idAt(Date.now() - this.limits.retentionMs);
    const batch = client.pipeline() as unknown as LogClient & { exec(): Promise<unknown> };
    for (const ep of this.seen) {
      batch.zremrangebyscore(this.attemptsKey(ep), '-inf', `(${cutoff}`);
      batch.logTrimEvents(this.eventsKey(ep), this.limits.events, cutoff, `${this.base}:e:${ep}:`);
    }
    batch.feedTrim(this.feedKey(), this.feedIdsKey(), this.limits.events, cutoff);
    await batch.exec();
  }

  async feedRead(after: number | undefined, limit: number, topics: ReadonlySet<string> | undefined, scan: number): Promise<FeedScan> {
    const client = await this.ready('read the feed of');
    let from = Math.max(after ?? -1, idAt(Date.now() - this.limits.retentionMs) - 1);
    const events: FeedItem[] = [];
    let last: FeedMark | undefined;
    let scanned = 0;
    const chunk = topics ? Math.max(limit, FEED_CHUNK) : limit;
    while (events.length < limit && scanned < scan) {
      const rows = await client.zrangebyscore(this.feedKey(), `(${from}`, '+inf', 'WITHSCORES', 'LIMIT', 0, Math.min(chunk, scan - scanned));
      for (let i = 0; i < rows.length; i += 2) {
        const item = parseFeedMember(rows[i], Number(rows[i + 1]));
        scanned++;
        last = { seq: item.seq, id: item.id };
        from = item.seq;
        if (!topics || topics.has(item.topic)) events.push(item);
        if (events.length === limit) break;
      }
      if (rows.length < 2 * chunk) break;
    }
    return { events, last };
  }

  async feedSeq(eventId: string): Promise<number | undefined> {
    const client = await this.ready('read the feed of');
    const seq = await client.hget(this.feedIdsKey(), eventId);
    return seq !== null && Number(seq) >= idAt(Date.now() - this.limits.retentionMs) ? Number(seq) : undefined;
  }

  async feedBounds(): Promise<{ oldest?: FeedMark; newest?: FeedMark }> {
    const client = await this.ready('read the feed of');
    const cutoff = idAt(Date.now() - this.limits.retentionMs);
    const read = client.pipeline();
    read.zrangebyscore(this.feedKey(), cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, 1);
    read.zrevrangebyscore(this.feedKey(), '+inf', cutoff, 'WITHSCORES', 'LIMIT', 0, 1);
    const [[e1, oldest], [e2, newest]] = ((await read.exec()) ?? []) as [Error | null, string[]][];
    if (e1 || e2) throw e1 ?? e2;
    const mark = (row: string[]): FeedMark | undefined => {
      if (row.length < 2) return undefined;
      return { seq: Number(row[1]), id: row[0].slice(0, row[0].indexOf(' ')) };
    };
    return { oldest: mark(oldest), newest: mark(newest) };
  }

  async consumerCursor(name: string): Promise<string | undefined> {
    const client = await this.ready('read a consumer of');
    return (await client.hget(this.consumersKey(), name)) ?? undefined;
  }

  async setConsumerCursor(name: string, cursor: string | undefined): Promise<void> {
    const client = await this.ready('save a consumer in');
    if (cursor === undefined) {
      await client.hdel(this.consumersKey(), name);
      return;
    }
    await client.pipeline().hset(this.consumersKey(), name, cursor).pexpire(this.consumersKey(), this.limits.retentionMs).exec();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.feedWatchers.clear();
    this.subscriber?.disconnect();
    await this.lease?.release();
  }

  /** Hears of every replica's feed writes through a Redis channel the write publishes to. */
  watchFeed(listener: () => void): () => void {
    this.feedWatchers.add(listener);
    if (!this.subscriber && !this.closed) {
      // Made from the connection's client once it is open: a subscriber cannot share it.
      void this.client().then(
        (client) => {
          if (this.subscriber || this.closed) return;
          const subscriber = (this.subscriber = client.duplicate());
          // A lost connection only delays readers: they also poll the log. The client reconnects and subscribes again.
          subscriber.on('error', () => undefined);
          subscriber.on('message', () => {
            for (const watcher of this.feedWatchers) watcher();
          });
          subscriber.subscribe(`${this.feedKey()}:written`).catch(() => undefined);
        },
        // Readers poll meanwhile; the next watchFeed tries again.
        () => undefined,
      );
    }
    return () => this.feedWatchers.delete(listener);
  }

  private decode(endpoint: string, hash: Record<string, string> | null): LoggedEvent | undefined {
    if (!hash?.body) return undefined;
    return {
      seq: hash.seq,
      endpoint,
      state: hash.state as EventState,
      attempts: Number(hash.attempts ?? 0),
      event: decodeEvent(JSON.parse(hash.body), `${this.description}: logged event ${hash.seq}`),
    };
  }

  /** The open client, for an operation (named in the error when the log is closed). */
  private async ready(operation: string): Promise<LogClient> {
    if (this.closed) throw new StoreClosedError(this.description, `${operation} the delivery log`);
    return this.client();
  }

  /** Opens the connection when it is not (again after a failure) and defines the log's scripts on its client. */
  private async client(): Promise<LogClient> {
    const client = await this.connection.open(this.connectTimeoutMs);
    if (!this.scripted.has(client)) {
      client.defineCommand('logCountAttempt', { numberOfKeys: 1, lua: COUNT_ATTEMPT });
      client.defineCommand('logSetState', { numberOfKeys: 1, lua: SET_STATE });
      client.defineCommand('logAddEvent', { numberOfKeys: 1, lua: ADD_EVENT });
      client.defineCommand('logTrimEvents', { numberOfKeys: 1, lua: TRIM_EVENTS });
      client.defineCommand('feedAdd', { numberOfKeys: 2, lua: FEED_ADD });
      client.defineCommand('feedTrim', { numberOfKeys: 2, lua: FEED_TRIM });
      this.scripted.add(client);
    }
    return client as LogClient;
  }
}

/** A feed member, `<id> <topic> <json>`, as an item. */
function parseFeedMember(member: string, seq: number): FeedItem {
  const a = member.indexOf(' ');
  const b = member.indexOf(' ', a + 1);
  return { seq, id: member.slice(0, a), topic: member.slice(a + 1, b), body: member.slice(b + 1) };
}
