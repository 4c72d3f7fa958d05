// Issue "operator console": what the attempt and event logs cost delivery, and how fast
// the console reads them when they are full. Dispatch: 50,000 events through an Endpoint
// to a receiver in another process, one per POST and with Distribution's config as is,
// without the logs and with them (memory and SQLite; and the SQLite queue without and
// with SQLite logs beside it, as `queue.type: sqlite` has it), in alternating rounds
// (BENCH_CONSOLE_ROUNDS, 3); entries the recorder dropped (its log store could not keep
// up) are noted, and each round of a variant with logs is set against the same round
// without them. BENCH_CONSOLE_VARIANTS (labels separated by `;`: `no logs;memory logs`)
// and BENCH_CONSOLE_CONFIGS (`one`, `batched`) run some of them. Reads: 20 endpoints and
// 1,000,000 logged attempts (100,000 events, ten attempts each) in SQLite and in Redis,
// the first page of an endpoint's attempts and a search by digest.
import { mkdtempSync, rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import os from 'node:os';
import path from 'node:path';
import { Endpoint, EndpointStats, type EndpointInit } from '../lib/pipeline';
import type { Event } from '../lib';
import { DeliveryRecorder } from '../lib/inspect/delivery-recorder';
import { LogClock, type DeliveryLog, type LogEntry } from '../lib/stores/delivery-log';
import { MemoryDeliveryLog } from '../lib/stores/memory-delivery-log';
import { logFileOf, SqliteDeliveryLog } from '../lib/stores/sqlite-delivery-log';
import { RedisDeliveryLog } from '../lib/stores/redis-delivery-log';
import { createEndpointStores, type EndpointStores } from '../lib/stores/create-stores';
import { normalizeQueue } from '../lib/config/normalize';
import { makeBenchEvents } from './events';
import { cpuMs, deleteRedisKeys, getJson, startChild, stop, type Result } from './util';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const EVENTS = Number(process.env.BENCH_CONSOLE_EVENTS ?? 50_000);
const ENDPOINTS = 20;
const ATTEMPTS = Number(process.env.BENCH_CONSOLE_ATTEMPTS ?? 1_000_000);
/** Attempts per logged event: an event retried nine times before it went through. */
const PER_EVENT = 10;
/** Rounds of each dispatch variant, alternating; the median is reported. */
const ROUNDS = Number(process.env.BENCH_CONSOLE_ROUNDS ?? 3);
/** The dispatch variants and configurations to run, by label; all when unset. */
const VARIANTS = process.env.BENCH_CONSOLE_VARIANTS?.split(';').map((s) => s.trim());
const CONFIGS = process.env.BENCH_CONSOLE_CONFIGS?.split(',').map((s) => s.trim());
/** Writes per turn of the event loop in the dispatch rounds. */
const WRITES_PER_TURN = 64;
/** Timed repetitions of each read; the median is reported. */
const READS = 50;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percent = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;

/** What one dispatch round runs with: the endpoint's stores (memory when absent) and the log (none when absent). */
interface Variant {
  stores?: () => EndpointStores;
  log?: () => DeliveryLog;
}

/** Delivers the sample through a new endpoint, with the log (a recorder on it) or without. */
async function deliver(url: string, sample: Event[], fields: Partial<EndpointInit>, variant: Variant) {
  const before = await getJson<{ events: number; requests: number }>(url);
  const stores = variant.stores?.();
  const log = variant.log?.();
  const recorder = log && new DeliveryRecorder(log);
  const stats = new EndpointStats('bench', undefined, { recorder });
  const endpoint = new Endpoint({ name: 'bench', url, ...fields }, { stats, ...(stores && { store: stores.queue, deadLetters: stores.deadLetters }) });
  // New event objects each round, as a registry makes a new one per operation: the JSON a
  // durable queue makes of an event is kept per object, and the sample's would otherwise
  // be encoded only in the first round.
  const events = sample.map((e) => ({ ...e }));
  const cpu = process.cpuUsage();
  const started = performance.now();
  // Writes come as a registry's requests would, a few per turn of the event loop: a loop
  // that never yields would hold back the sender's answers (timeouts) and the recorder's
  // flushes (its buffer overflows) until every write is in.
  for (let i = 0; i < EVENTS; i++) {
    await endpoint.write([events[i % events.length]]);
    if (i % WRITES_PER_TURN === WRITES_PER_TURN - 1) await new Promise((r) => setImmediate(r));
  }
  while (stats.counters.Successes < EVENTS) await new Promise((r) => setTimeout(r, 5));
  await recorder?.flush();
  const seconds = (performance.now() - started) / 1000;
  const cpuPerEvent = (cpuMs(cpu) * 1000) / EVENTS;
  await endpoint.close();
  await recorder?.close();
  const after = await getJson<{ events: number; requests: number }>(url);
  return { perSecond: EVENTS / seconds, cpuPerEvent, perPost: (after.events - before.events) / (after.requests - before.requests), dropped: recorder?.dropped ?? 0 };
}

/** Fills a log with ATTEMPTS attempts over ENDPOINTS endpoints, in batches as a recorder writes them. */
async function fill(log: DeliveryLog): Promise<{ digest: string; seconds: number }> {
  const clock = new LogClock();
  const events = makeBenchEvents(ATTEMPTS / PER_EVENT);
  const started = performance.now();
  const perEndpoint = events.length / ENDPOINTS;
  for (let ep = 0; ep < ENDPOINTS; ep++) {
    const endpoint = `endpoint-${ep}`;
    for (let i = 0; i < perEndpoint; i += 100) {
      const batch = events.slice(ep * perEndpoint + i, ep * perEndpoint + Math.min(i + 100, perEndpoint));
      const entries: LogEntry[] = [{ kind: 'events', endpoint, state: 'pending', events: batch, seq: clock.next(batch.length), at: Date.now() }];
      for (const e of batch) {
        for (let a = 1; a <= PER_EVENT; a++) {
          entries.push({
            kind: 'attempt',
            attempt: { id: String(clock.next()), time: new Date().toISOString(), endpoint, eventIds: [e.id], attempt: a, status: a < PER_EVENT ? 503 : 200, error: null, latencyMs: 3.2, response: a < PER_EVENT ? 'busy' : '', test: false },
          });
        }
      }
      entries.push({ kind: 'events', endpoint, state: 'delivered', events: batch, seq: 0, at: Date.now() });
      await log.write(entries);
    }
  }
  // A digest in the middle of the log.
  return { digest: events[Math.floor(events.length / 2)].target.digest!, seconds: (performance.now() - started) / 1000 };
}

async function reads(name: string, log: DeliveryLog): Promise<Result[]> {
  const { digest, seconds } = await fill(log);
  const endpoints = Array.from({ length: ENDPOINTS }, (_, i) => `endpoint-${i}`);
  const time = async (read: () => Promise<unknown>) => {
    const ms: number[] = [];
    for (let i = 0; i < READS; i++) {
      const t = performance.now();
      await read();
      ms.push(performance.now() - t);
    }
    return median(ms);
  };
  const page = await time(() => log.attempts('endpoint-7', { limit: 50 }));
  const found = await log.events({ endpoints, digest, limit: 50 });
  if (found.items.length !== 1) throw new Error(`${name}: the search by digest found ${found.items.length} events, expected 1`);
  const search = await time(() => log.events({ endpoints, digest, limit: 50 }));
  const one = await time(() => log.event(found.items[0].event.id, endpoints));
  const latest = await time(() => log.events({ endpoints, limit: 50 }));
  const note = `${ATTEMPTS.toLocaleString('en-US')} attempts, ${(ATTEMPTS / PER_EVENT).toLocaleString('en-US')} events, ${ENDPOINTS} endpoints; filled in ${seconds.toFixed(1)} s`;
  return [
    { name: `${name} log: first page of 50 attempts`, value: page, unit: 'ms', note },
    { name: `${name} log: search by digest, 20 endpoints`, value: search, unit: 'ms' },
    { name: `${name} log: one event by id, 20 endpoints`, value: one, unit: 'ms' },
    { name: `${name} log: newest 50 events of 20 endpoints, no filter`, value: latest, unit: 'ms' },
  ];
}

/** `dispatch`, `reads` or `memory` to run one part of the suite; all three when unset. */
const PART = process.env.BENCH_CONSOLE_PART;
const partRuns = (part: 'dispatch' | 'reads' | 'memory') => PART === undefined || PART === part;

export async function benchConsole(): Promise<Result[]> {
  const results: Result[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-console-'));
  if (partRuns('dispatch')) results.push(...(await dispatch(dir)));
  if (partRuns('reads')) results.push(...(await logReads(dir)));
  if (partRuns('memory')) results.push(await logMemory());
  rmSync(dir, { recursive: true, force: true });
  return results;
}

async function dispatch(dir: string): Promise<Result[]> {
  const results: Result[] = [];
  const sample = makeBenchEvents(EVENTS);
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const url = `http://127.0.0.1:${firstLine.trim()}/`;
  try {
    const configs = [
      ['one', 'one per POST', { maxEvents: 1 }],
      ['batched', "Distribution's config as is", {}],
    ] as const;
    for (const [, label, fields] of configs.filter(([key]) => !CONFIGS || CONFIGS.includes(key))) {
      // A file per round; with the SQLite queue the log goes beside it, as `queue.type: sqlite` has it.
      let file = '';
      const sqliteLog = () => new SqliteDeliveryLog({ path: logFileOf(file), attempts: 100_000, events: 100_000 });
      const sqliteQueue = () => createEndpointStores(normalizeQueue({ type: 'sqlite', path: file, spoolDir: dir }), 'bench', 'bench');
      const variants: [string, Variant][] = [
        ['no logs', {}],
        ['memory logs', { log: () => new MemoryDeliveryLog({ attempts: 100_000, events: 100_000 }) }],
        ['SQLite logs', { log: sqliteLog }],
        // What a user of `queue.type: sqlite` has: the queue in its file and the logs beside it.
        ['SQLite queue, no logs', { stores: sqliteQueue }],
        ['SQLite queue, SQLite logs', { stores: sqliteQueue, log: sqliteLog }],
      ];
      const runs = variants.filter(([logs]) => !VARIANTS || VARIANTS.includes(logs));
      // Rounds alternate the variants, so that a noisy neighbour weighs on each alike; the median is reported.
      const rounds: Awaited<ReturnType<typeof deliver>>[][] = runs.map(() => []);
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, [, variant]] of runs.entries()) {
          file = path.join(dir, `dispatch-${round}-${i}.db`);
          rounds[i].push(await deliver(url, sample, fields, variant));
        }
      }
      for (const [i, [logs, variant]] of runs.entries()) {
        const rs = rounds[i];
        const dropped = Math.max(...rs.map((r) => r.dropped));
        // With logs: each round's throughput against the same round's without them (same queue).
        const base = variant.log ? runs.findIndex(([, v]) => !v.log && v.stores === variant.stores) : -1;
        const ratios = base >= 0 ? rs.map((r, k) => r.perSecond / rounds[base][k].perSecond - 1) : [];
        const paired = ratios.length > 0 ? `; against no logs by round: ${ratios.map(percent).join(', ')} (median ${percent(median(ratios))})` : '';
        results.push({
          name: `dispatch ${label}, ${logs}`,
          value: median(rs.map((r) => r.perSecond)),
          unit: 'events/s',
          note: `median of ${rs.length}; ${median(rs.map((r) => r.cpuPerEvent)).toFixed(1)} µs sender CPU per event, ${rs[0].perPost.toFixed(1)} events per POST${dropped ? `, up to ${dropped} log entries dropped` : ''}${paired}`,
        });
      }
    }
  } finally {
    await stop(child);
  }
  return results;
}

async function logReads(dir: string): Promise<Result[]> {
  const results: Result[] = [];
  const limits = { attempts: ATTEMPTS / ENDPOINTS, events: ATTEMPTS / PER_EVENT / ENDPOINTS };
  const sqlite = new SqliteDeliveryLog({ path: path.join(dir, 'reads.db'), ...limits });
  try {
    results.push(...(await reads('SQLite', sqlite)));
  } finally {
    await sqlite.close();
  }
  const prefix = `bench-console-${process.pid}`;
  const redis = new RedisDeliveryLog({ url: REDIS_URL, prefix, ...limits });
  try {
    await redis.open();
    results.push(...(await reads('Redis', redis)));
  } finally {
    await redis.close();
    await deleteRedisKeys(REDIS_URL, `${prefix}:*`);
  }
  return results;
}

/** Events recorded by `logMemory`, in batches of fresh objects as requests would make them. */
const MEMORY_EVENTS = Number(process.env.BENCH_CONSOLE_MEMORY_EVENTS ?? 400_000);

/**
 * Issue "operator console": memory stays bounded by the configured limits whatever the
 * traffic. Records MEMORY_EVENTS events (accepted, one attempt per 100, delivered) in the
 * memory log, the one that keeps them on the heap, with limits of 10,000 events and
 * 1,000 attempts, and reads the heap after a full collection at each quarter.
 */
async function logMemory(): Promise<Result> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const recorder = new DeliveryRecorder(new MemoryDeliveryLog({ attempts: 1_000, events: 10_000 }));
  // The heap is the whole process's, with what the suites before this one left: the
  // levels are reported above the heap at the start.
  gc();
  const base = process.memoryUsage().heapUsed / 2 ** 20;
  const heap: number[] = [];
  const quarter = MEMORY_EVENTS / 4;
  for (let done = 0; done < MEMORY_EVENTS; ) {
    const batch = makeBenchEvents(100);
    recorder.events('bench', 'pending', batch);
    recorder.attempt({ endpoint: 'bench', eventIds: batch.map((e) => e.id), attempt: 1, status: 200, error: null, latencyMs: 1, response: null, test: false });
    recorder.events('bench', 'delivered', batch);
    done += batch.length;
    if (done % 10_000 === 0) await recorder.flush();
    if (done % quarter === 0) {
      gc();
      heap.push(process.memoryUsage().heapUsed / 2 ** 20 - base);
    }
  }
  await recorder.close();
  return {
    name: `memory log heap after each quarter of ${MEMORY_EVENTS.toLocaleString('en-US')} events (limits 10,000 events, 1,000 attempts of 100 events each: both reached in the first quarter)`,
    // Both limits are reached in the first quarter: from then on the heap must stay flat.
    value: heap[heap.length - 1] - heap[1],
    unit: 'MB growth, second quarter to last',
    note: `above ${base.toFixed(1)} MB at the start: ${heap.map((h) => `${h.toFixed(1)} MB`).join(' · ')}`,
  };
}
