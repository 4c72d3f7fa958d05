import { hostname } from 'node:os';
import type { ChainableCommander, default as Redis } from 'ioredis';
import { DEFAULTS } from '../config/defaults';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';
import { connectionName, describeRedisAddress, RedisConnection, shareRedisConnection, type RedisLease } from './redis-connections';
import {
  StoreClosedError,
  StoreCorruptError,
  StoreOpenError,
  type EndpointControl,
  type QueueStore,
  type StoredEvent,
} from './queue-store';

export interface RedisStoreOptions {
  /**
   * Where Redis is, e.g. `redis://127.0.0.1:6379/0`; give this or `client`. Every store
   * (queues and dead letters) of one URL and `connectionName` in this process shares one
   * connection for its commands; each queue also has one of its own for its blocking reads.
   */
  url?: string;
  /**
   * A client to use instead of `url`. The store duplicates it for its blocking reads and
   * leaves the client itself open on `close()`: it belongs to the caller.
   */
  client?: Redis;
  /** Which endpoint's queue: the stream is `<prefix>:queue:<queue>`. */
  queue: string;
  /**
   * This replica's consumer name in the group. Keep it stable across restarts (an instance
   * id saved on disk, a pod name) so a restarted replica resumes its own unacknowledged
   * entries at once instead of after `claimIdleMs`.
   * @default `${os.hostname()}-${process.pid}`
   */
  consumer?: string;
  /** Prefix of every key the store writes. @default 'regnotify' */
  prefix?: string;
  /**
   * How long, in ms, the entries a consumer took stay with it once it stops touching them;
   * then another consumer takes them over. A live consumer touches what it holds every
   * third of this, so a slow delivery (an endpoint down for hours) keeps its entries.
   * @default 60000 (1 min)
   */
  claimIdleMs?: number;
  /**
   * How long, in ms, a consumer that holds no entries may go without reading before it is
   * removed from the group (a replica that died, or restarted under a new name). A live
   * consumer reads at least every `claimIdleMs`, and one removed by mistake is added back
   * by its next read, so this only keeps the group's list of consumers short.
   * @default 10 minutes, and at least three times `claimIdleMs`
   */
  removeConsumerIdleMs?: number;
  /** How long `open()` waits for Redis to answer PING, in ms. @default 2000 (2s) */
  connectTimeoutMs?: number;
  /**
   * How the store's connections are named in CLIENT LIST: the shared one `<name>`, the
   * queue's blocking one `<name>:take:<queue>`. @default the prefix
   */
  connectionName?: string;
  /**
   * Called when an entry cannot be decoded as an event. The entry is copied to
   * `<prefix>:corrupt:<queue>` and removed from the queue, so it cannot stall it.
   */
  onCorrupt?(err: Error): void;
  /** Called with connection errors after `open()`; the client keeps reconnecting. */
  onConnectionError?(err: Error): void;
}

type StreamEntry = [id: string, fields: string[] | null];

/** What one read returned: the events, and how many entries it saw (some may have been set aside). */
interface Read {
  events: StoredEvent[];
  entries: number;
}

/**
 * This consumer's count for `pending()`, in one round trip: the stream's length, the
 * group's pending entries and this consumer's. Acknowledged entries are deleted, so the
 * stream holds the group's pending entries plus those no consumer has taken yet.
 */
const PENDING_SCRIPT = `
local len = redis.call('XLEN', KEYS[1])
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
local own = 0
if summary[4] then
  for _, c in ipairs(summary[4]) do
    if c[1] == ARGV[2] then own = tonumber(c[2]) end
  end
end
return {len, summary[1], own}`;

/**
 * The heartbeat, atomically: resets the idle time of every entry this consumer holds
 * (XCLAIM to itself, only entries it still holds, so none is taken back from a consumer
 * that took it over), then removes the consumers that hold nothing and have been idle
 * longer than ARGV[3]. Being one script, no read can give a consumer entries between the
 * check and its removal. Returns the names removed.
 */
const HEARTBEAT_SCRIPT = `
local start = '-'
while true do
  local held = redis.call('XPENDING', KEYS[1], ARGV[1], start, '+', 500, ARGV[2])
  if #held == 0 then break end
  local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, e in ipairs(held) do claim[#claim + 1] = e[1] end
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
  if #held < 500 then break end
  start = '(' .. held[#held][1]
end
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed`;

/**
 * Pending events in a Redis stream shared by every registry replica: one stream per
 * endpoint, one consumer group on it, each replica a consumer.
 *
 * - **Taking.** Each take first takes over the entries of other consumers that have been
 *   idle for `claimIdleMs` (a live consumer touches what it holds every third of that, so
 *   only a dead one's go idle), then hands out what this consumer holds, oldest first,
 *   and only when it holds nothing new entries. Entries taken over while a read waited
 *   go before the new ones it brought: what one take returns is in stream order.
 * - **Round trips.** New entries are handed out only once a look at the group, after
 *   the read that brought them, finds that nothing older is ours (none taken over, none
 *   a lost answer left with us); read and look go in one pipeline. So while the store
 *   knows it holds nothing (all it handed out acknowledged, its pending list seen empty
 *   or handed out in full), a take skips reading that list: a backlog drains at one
 *   round trip per take, plus the ack. Whatever the store does not know (a restart, a
 *   lost answer) the look finds, and the pending list is read.
 * - **Order across replicas.** Replicas deliver at the same time, each what it took, so an
 *   endpoint gets the events of different replicas interleaved, not in stream order. A
 *   dead replica's entries can be told from a slow one's only by their idle time, so they
 *   reach the endpoint `claimIdleMs` after it died: after the newer events live replicas
 *   delivered in that time, though before the taking replica's next new ones.
 *   With one replica, or one at a time, the endpoint gets the stream's order.
 * - **Dead consumers** that hold no entries and have not read for `removeConsumerIdleMs`
 *   are removed from the group; a consumer that holds entries never is.
 * - **`pending()`** is this replica's share: the entries it holds plus those no replica
 *   has taken yet, not those another replica holds: what this replica has left to
 *   deliver. A replica that shuts down waits for its own entries and the untaken ones
 *   (which it may take and deliver), never for another live replica's.
 * - **Connections.** Commands go over one connection per URL shared by every endpoint's
 *   stores; each queue has its own connection for its blocking reads. A store whose
 *   server did not answer at first connects on a later use.
 *
 * Use `await RedisStore.connect(options)` to find out at start-up whether Redis is there;
 * a store made with `new` connects on first use.
 */
export class RedisStore implements QueueStore {
  readonly description: string;
  /** The stream key. */
  readonly key: string;
  readonly consumer: string;
  private readonly group = DEFAULTS.stores.redisGroup;
  private readonly corruptKey: string;
  private readonly controlKey: string;
  private readonly claimIdleMs: number;
  private readonly removeConsumerIdleMs: number;
  private readonly connectTimeoutMs: number;
  /** The shared connection's lease; none for a client given in the options. */
  private readonly lease?: RedisLease;
  private readonly main: RedisConnection;
  private readonly blocking: RedisConnection;
  private readonly stopErrors: () => void;
  private readonly options: RedisStoreOptions;
  private opened?: Promise<void>;
  private takeChain: Promise<unknown> = Promise.resolve();
  /** Entries take handed out and ack has not yet removed: a take hands them out again. */
  private readonly handedOut = new Set<string>();
  /**
   * Whether this consumer's pending list held nothing but `handedOut` when last seen, so
   * that a take may go straight to new entries (their look finds anything else).
   */
  private holdsNothing = false;
  private closed = false;
  private heartbeat?: NodeJS.Timeout;

  /** Opens and verifies a store: rejects with `StoreOpenError` if Redis does not answer. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options);
    try {
      await store.open();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  constructor(options: RedisStoreOptions) {
    if (typeof options.queue !== 'string' || options.queue === '') {
      throw new TypeError('redis store: option "queue" must be a non-empty string');
    }
    if (!options.url === !options.client) {
      throw new TypeError('redis store: give exactly one of the options "url" and "client"');
    }
    this.options = options;
    const prefix = options.prefix ?? DEFAULTS.queue.prefix;
    this.key = `${prefix}:queue:${options.queue}`;
    this.corruptKey = `${prefix}:corrupt:${options.queue}`;
    this.controlKey = `${prefix}:control:${options.queue}`;
    this.consumer = options.consumer ?? `${hostname()}-${process.pid}`;
    this.claimIdleMs = options.claimIdleMs ?? DEFAULTS.queue.claimIdleMs;
    this.removeConsumerIdleMs =
      options.removeConsumerIdleMs ?? Math.max(DEFAULTS.stores.redisRemoveConsumerIdleMs, 3 * this.claimIdleMs);
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.stores.redisConnectTimeoutMs;
    const name = options.connectionName ?? prefix;
    const blockingName = connectionName(name, 'take', options.queue);
    if (options.client) {
      const client = options.client;
      this.main = RedisConnection.borrow(client);
      this.blocking = new RedisConnection((o) => client.duplicate({ ...o, connectionName: blockingName }));
      this.description = describeRedisAddress(client);
    } else {
      const url = options.url!;
      this.lease = shareRedisConnection(url, connectionName(name), 'the redis store');
      this.main = this.lease.connection;
      this.blocking = RedisConnection.fromUrl(url, blockingName, 'the redis store');
      this.description = describeRedisAddress(undefined, url);
    }
    const report = (err: Error) => {
      if (!this.closed) this.options.onConnectionError?.(err);
    };
    const stopMain = this.main.onError(report);
    const stopBlocking = this.blocking.onError(report);
    this.stopErrors = () => {
      stopMain();
      stopBlocking();
    };
  }

  /** The shared connection; only after `ready()`. */
  private get client(): Redis {
    return this.main.client;
  }

  /** The server's id of the blocking connection, to interrupt its reads. */
  private get blockingId(): number | undefined {
    return this.blocking.id;
  }

  /**
   * Connects both connections, checks Redis answers PING within `connectTimeoutMs` and
   * creates the consumer group. Rejects with `StoreOpenError` naming the address.
   * Called by every operation; once it succeeded it resolves at once, and after a failure
   * the next call tries again (Redis may be back).
   */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError(this.description, 'open'));
    this.opened ??= this.verify().catch((err: unknown) => {
      this.opened = undefined;
      throw err;
    });
    return this.opened;
  }

  private async verify(): Promise<void> {
    try {
      // Both attempts settle before this one fails, so the next open() starts afresh.
      const attempts = await Promise.allSettled([this.main.open(this.connectTimeoutMs), this.blocking.open(this.connectTimeoutMs)]);
      for (const a of attempts) if (a.status === 'rejected') throw a.reason;
      await this.ensureGroup();
    } catch (err) {
      if (this.closed) throw new StoreClosedError(this.description, 'open');
      const cause = err as Error;
      throw new StoreOpenError('redis', this.description, cause.message, { cause });
    }
    if (this.closed) throw new StoreClosedError(this.description, 'open');
    // A replica that is alive but slow (its endpoint down, a long retry) touches the
    // entries it holds, so that others take them over only from a replica that died.
    const every = Math.max(50, Math.floor(Math.min(this.claimIdleMs, this.removeConsumerIdleMs) / 3));
    this.heartbeat ??= setInterval(() => void this.beat(), every);
    this.heartbeat.unref();
  }

  private async ensureGroup(): Promise<void> {
    try {
      // Start at 0 so events appended before the group existed are delivered too.
      await this.client.xgroup('CREATE', this.key, this.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
  }

  /** Adds the events to the stream (one pipeline); when this resolves Redis has them. */
  async append(events: readonly Event[]): Promise<void> {
    await this.ready('append');
    if (events.length === 0) return;
    if (events.length === 1) {
      // One event, one command: a pipeline of one costs more than the command.
      await this.client.xadd(this.key, '*', 'event', storedEventJson(events[0])).catch((err: Error) => {
        throw new Error(`${this.description}: appending to ${this.key} failed: ${err.message}`);
      });
      return;
    }
    const pipeline = this.client.pipeline();
    for (const event of events) pipeline.xadd(this.key, '*', 'event', storedEventJson(event));
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw new Error(`${this.description}: appending to ${this.key} failed: ${failed[0]!.message}`);
  }

  /**
   * Returns, oldest first: this consumer's unacknowledged entries, after taking over those
   * of consumers idle for `claimIdleMs`; when it holds none, new ones. One take runs at a time.
   */
  take(max: number, signal: AbortSignal, waitMs = DEFAULTS.stores.takeWaitMs): Promise<StoredEvent[]> {
    const run = this.takeChain.then(() => this.takeEntries(max, signal, waitMs));
    this.takeChain = run.catch(() => undefined);
    return run;
  }

  private async takeEntries(max: number, signal: AbortSignal, waitMs: number): Promise<StoredEvent[]> {
    await this.ready('take');
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (!this.holdsNothing || this.handedOut.size > 0) {
        // Dead consumers' idle entries join ours; then everything we hold, in stream order.
        const own = await this.readOwn(max);
        // Handed out in full (fewer than max), the list holds nothing more until we read.
        this.holdsNothing = own.entries < max;
        if (own.events.length > 0) return this.handOut(own.events);
        if (own.entries > 0) continue; // all set aside as corrupt or deleted: look again
        this.handedOut.clear(); // acknowledged, or deleted under us
      }
      // New entries, and the look that says whether they may go out (one round trip).
      const fresh = await this.readNew(max);
      if (fresh === undefined) continue; // something older is ours: the pending list first
      if (fresh.events.length > 0) return this.handOut(fresh.events);
      if (fresh.entries > 0) continue; // all set aside as corrupt: look again
      if (signal.aborted || this.closed) return [];
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      // Block no longer than claimIdleMs, so entries of a dead consumer are picked up
      // while we wait rather than only on the next take.
      const waited = await this.blockingRead(max, Math.max(1, Math.min(remaining, this.claimIdleMs)), signal);
      if (this.closed) return [];
      if (waited.events.length > 0) {
        if (await this.nothingOlderHeld(waited.events[0].key, max)) return this.handOut(waited.events);
        this.holdsNothing = false;
        continue;
      }
      if (waited.entries > 0) continue;
      if (signal.aborted) return [];
    }
  }

  private handOut(events: StoredEvent[]): StoredEvent[] {
    for (const e of events) this.handedOut.add(e.key);
    return events;
  }

  async ack(entries: readonly StoredEvent[]): Promise<void> {
    await this.ready('ack');
    if (entries.length === 0) return;
    const ids = entries.map((e) => e.key);
    // XDEL too, so the stream holds only what is not yet acknowledged.
    await this.client.multi().xack(this.key, this.group, ...ids).xdel(this.key, ...ids).exec();
    for (const id of ids) this.handedOut.delete(id);
  }

  /**
   * Touches what this consumer holds and removes dead consumers (HEARTBEAT_SCRIPT). A
   * failure while the connection is down is already reported by the connection.
   */
  private async beat(): Promise<void> {
    if (this.closed) return;
    try {
      await this.withGroup(() =>
        this.client.eval(HEARTBEAT_SCRIPT, 1, this.key, this.group, this.consumer, this.removeConsumerIdleMs),
      );
    } catch (err) {
      if (!this.closed && this.client.status === 'ready') this.options.onConnectionError?.(err as Error);
    }
  }

  /**
   * This replica's pending events: the entries it holds (taken and not acknowledged) plus
   * those no replica has taken yet. Entries another replica holds are its own, and those
   * of a dead replica count once a live one has taken them over.
   */
  async pending(): Promise<number> {
    await this.ready('count pending events');
    const [len, total, own] = (await this.withGroup(() =>
      this.client.eval(PENDING_SCRIPT, 1, this.key, this.group, this.consumer),
    )) as [number, number, number];
    // An entry deleted while pending is in the group's list but not the stream: never below 0.
    return own + Math.max(0, len - total);
  }

  async loadControl(): Promise<EndpointControl | undefined> {
    await this.ready('load the endpoint control');
    const raw = await this.client.get(this.controlKey);
    if (raw === null) return undefined;
    let control: unknown;
    try {
      control = JSON.parse(raw);
    } catch (err) {
      throw new StoreCorruptError(this.description, `${this.controlKey} is not JSON`, { cause: err });
    }
    if (!isControl(control)) {
      throw new StoreCorruptError(this.description, `${this.controlKey} is not an endpoint control: ${raw.slice(0, 200)}`);
    }
    return { state: control.state, reason: control.reason, since: control.since };
  }

  async saveControl(control: EndpointControl | undefined): Promise<void> {
    await this.ready('save the endpoint control');
    if (control === undefined) await this.client.del(this.controlKey);
    else await this.client.set(this.controlKey, JSON.stringify({ state: control.state, reason: control.reason, since: control.since }));
  }

  /**
   * Interrupts a waiting take and lets go of the connections: its own blocking one at
   * once, the shared one when no other store uses it. A client given in the options stays open.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.stopErrors();
    // Disconnecting rejects a blocked XREADGROUP at once; takeEntries turns that into [].
    this.blocking.disconnect();
    await this.takeChain;
    // The last store to let go of the shared connection closes it (an open under way fails).
    await this.lease?.release();
  }

  private async ready(operation: string): Promise<void> {
    if (this.closed) throw new StoreClosedError(this.description, operation);
    await this.open();
  }

  /**
   * Takes over, oldest first, up to `max` entries other consumers have left idle for
   * `claimIdleMs`, then reads up to `max` of the entries this consumer holds, oldest
   * first: one round trip, two when the group's list is long.
   */
  private async readOwn(max: number): Promise<Read> {
    const [claim, own] = await this.pipelined((p) => {
      this.queueReclaim(p, '0-0', max);
      p.call('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', max, 'STREAMS', this.key, '0');
    });
    const [cursor, ids] = claim as [string, string[]];
    // XAUTOCLAIM looks at a limited stretch of the group's list per call: follow its cursor,
    // and read again if that took more over.
    if (cursor !== '0-0' && ids.length < max && (await this.reclaimFrom(cursor, max - ids.length)) > 0) return this.readOwn(max);
    return this.decodeReply(own);
  }

  /**
   * Reads up to `max` new entries and, in the same pipeline, looks whether anything
   * older is ours: entries of a consumer idle for `claimIdleMs` (taken over now), or
   * entries a read whose answer was lost gave us (the client sends a read again when it
   * reconnects, and Redis answers the second with newer entries). Returns the new entries
   * (none when there are none) when nothing older is ours; undefined when something is:
   * then everything goes out from the pending list, oldest first.
   */
  private async readNew(max: number): Promise<Read | undefined> {
    const [reply, claim, held] = await this.pipelined((p) => {
      p.call('XREADGROUP', 'GROUP', this.group, this.consumer, 'COUNT', max, 'STREAMS', this.key, '>');
      this.queueReclaim(p, '0-0', max);
      p.call('XPENDING', this.key, this.group, '-', '+', 1, this.consumer);
    });
    const fresh = await this.decodeReply(reply);
    if (await this.nothingOlder(claim, held, fresh.events[0]?.key, max)) return fresh;
    this.holdsNothing = false;
    return undefined;
  }

  /** After a blocking read: whether, once idle entries are taken over, the oldest entry this consumer holds is `first`. */
  private async nothingOlderHeld(first: string, max: number): Promise<boolean> {
    const [claim, held] = await this.pipelined((p) => {
      this.queueReclaim(p, '0-0', max);
      p.call('XPENDING', this.key, this.group, '-', '+', 1, this.consumer);
    });
    return this.nothingOlder(claim, held, first, max);
  }

  /**
   * From an XAUTOCLAIM and an XPENDING answer: none taken over, and the oldest entry this
   * consumer holds is `first` (it holds none when `first` is undefined).
   */
  private async nothingOlder(claim: unknown, held: unknown, first: string | undefined, max: number): Promise<boolean> {
    const [cursor, ids] = claim as [string, string[]];
    if (ids.length > 0) return false;
    if (cursor !== '0-0' && (await this.reclaimFrom(cursor, max)) > 0) return false;
    return (held as [string, ...unknown[]][])[0]?.[0] === first;
  }

  private queueReclaim(p: ChainableCommander, cursor: string, max: number): void {
    p.call('XAUTOCLAIM', this.key, this.group, this.consumer, this.claimIdleMs, cursor, 'COUNT', max, 'JUSTID');
  }

  /** Follows XAUTOCLAIM's cursor from `cursor`, taking over up to `max` entries; returns how many. */
  private async reclaimFrom(cursor: string, max: number): Promise<number> {
    let claimed = 0;
    while (cursor !== '0-0' && claimed < max && !this.closed) {
      const [[next, ids]] = (await this.pipelined((p) => this.queueReclaim(p, cursor, max - claimed))) as [[string, string[]]];
      cursor = next;
      claimed += ids.length;
    }
    return claimed;
  }

  /**
   * Sends the commands `queue` adds in one pipeline (one round trip) and returns their
   * answers; rejects with the first error, after recreating the group once if the stream
   * was deleted under us.
   */
  private pipelined(queue: (p: ChainableCommander) => void): Promise<unknown[]> {
    return this.withGroup(async () => {
      const p = this.client.pipeline();
      queue(p);
      const results = (await p.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
      return results.map(([, reply]) => reply);
    });
  }

  private async read(conn: Redis, max: number, from: string, blockMs?: number): Promise<Read> {
    const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', max];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.key, from);
    return this.decodeReply(await this.withGroup(() => conn.call('XREADGROUP', ...args)));
  }

  /** The events of an XREADGROUP answer (null when it found nothing new). */
  private async decodeReply(reply: unknown): Promise<Read> {
    const entries = (reply as [string, StreamEntry[]][] | null)?.[0]?.[1] ?? [];
    return { events: await this.decode(entries), entries: entries.length };
  }

  private async blockingRead(max: number, blockMs: number, signal: AbortSignal): Promise<Read> {
    // CLIENT UNBLOCK makes the blocked read return as if it had timed out, keeping the connection.
    // It is repeated because an abort can come before the read has reached the server.
    let retry: NodeJS.Timeout | undefined;
    const interrupt = () => {
      if (this.blockingId !== undefined && !this.closed) {
        this.client.client('UNBLOCK', this.blockingId).catch(() => undefined);
      }
      retry = setTimeout(interrupt, 50);
    };
    signal.addEventListener('abort', interrupt, { once: true });
    try {
      return await this.read(this.blocking.client, max, '>', blockMs);
    } catch (err) {
      if (this.closed) return { events: [], entries: 0 };
      throw err;
    } finally {
      signal.removeEventListener('abort', interrupt);
      clearTimeout(retry);
    }
  }

  /** Runs a group command, recreating the group once if the stream was deleted under us. */
  private async withGroup<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      if (!String((err as Error).message).includes('NOGROUP')) throw err;
      await this.ensureGroup();
      return command();
    }
  }

  private async decode(entries: StreamEntry[]): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (const [id, fields] of entries) {
      // An entry deleted while still pending comes back without fields; it is done with.
      if (!fields) {
        await this.client.xack(this.key, this.group, id);
        continue;
      }
      const body = fieldValue(fields, 'event');
      try {
        if (body === undefined) throw new Error('entry has no "event" field');
        out.push({ key: id, event: decodeEvent(JSON.parse(body), `entry ${id}`) });
      } catch (err) {
        await this.quarantine(id, fields, err as Error);
      }
    }
    return out;
  }

  private async quarantine(id: string, fields: string[], err: Error): Promise<void> {
    await this.client
      .multi()
      .xadd(this.corruptKey, '*', 'id', id, 'reason', err.message, ...fields)
      .xack(this.key, this.group, id)
      .xdel(this.key, id)
      .exec();
    this.options.onCorrupt?.(
      new Error(`${this.description}: ${this.key}: ${err.message}; moved to ${this.corruptKey}`, { cause: err }),
    );
  }
}

function isControl(value: unknown): value is EndpointControl {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (v.state === 'paused' || v.state === 'gone') && typeof v.reason === 'string' && typeof v.since === 'string';
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
