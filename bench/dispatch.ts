// Issue "core": 50,000 events through an Endpoint to a receiver in another process on
// loopback, one event per envelope as Distribution sends them, and with Distribution's
// config as is (our defaults batch what piles up); events arriving about 1 ms apart, as
// under a manifest GET load: how many go per POST, and how long they wait; and the cost
// of building one event in the bridge.
import { Bridge, Endpoint, EndpointStats, urlBuilderFor, type EndpointInit, type HttpSinkHooks, type Sink } from '../lib/pipeline';
import { DEFAULTS, type Event } from '../lib';
import { TINY_MANIFEST } from './events';
import { cpuMs, getJson, startChild, stop, type Result } from './util';

const EVENTS = Number(process.env.BENCH_DISPATCH_EVENTS ?? 50_000);
/** Events of each paced run, one every ~1 ms. */
const PACED = Number(process.env.BENCH_PACED_EVENTS ?? 4_000);

/** Stats that also note when each event was delivered. */
class TimingStats extends EndpointStats {
  readonly delivered = new Map<string, number>();
  override httpHooks(): HttpSinkHooks {
    const hooks = super.httpHooks();
    return {
      ...hooks,
      success: (status, events, ms) => {
        const now = performance.now();
        for (const e of events) this.delivered.set(e.id, now);
        hooks.success?.(status, events, ms);
      },
    };
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

/**
 * Writes `events` one at a time, ~1 ms apart (a timer tick), to an endpoint with these
 * fields, and reports the mean events per POST, the wait from write to delivery, and the
 * sender's CPU per event.
 */
async function paced(url: string, events: Event[], fields: Partial<EndpointInit>): Promise<{ perPost: number; p50: number; p99: number; max: number; cpuUs: number; perSecond: number }> {
  const before = await getJson<{ events: number; requests: number }>(url);
  const stats = new TimingStats('bench');
  const endpoint = new Endpoint({ name: 'bench', url, ...fields }, { stats });
  const written = new Map<string, number>();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const event of events) {
    written.set(event.id, performance.now());
    await endpoint.write([event]);
    await new Promise((r) => setTimeout(r, 1));
  }
  const perSecond = events.length / ((performance.now() - started) / 1000);
  while (stats.counters.Successes < events.length) await new Promise((r) => setTimeout(r, 5));
  const cpuUs = (cpuMs(cpu) * 1000) / events.length;
  await endpoint.close();
  const after = await getJson<{ events: number; requests: number }>(url);
  const waits = events.map((e) => stats.delivered.get(e.id)! - written.get(e.id)!).sort((a, b) => a - b);
  return { perPost: (after.events - before.events) / (after.requests - before.requests), p50: percentile(waits, 50), p99: percentile(waits, 99), max: waits[waits.length - 1], cpuUs, perSecond };
}

/**
 * Writes the sample to a new endpoint back to back and times its delivery to the counting
 * receiver at `url`: events/s, sender CPU per event, and what the receiver counted.
 */
async function timedDelivery(url: string, sample: Event[], fields: Partial<EndpointInit>): Promise<{ perSecond: number; cpuPerEvent: number; events: number; requests: number }> {
  const before = await getJson<{ events: number; requests: number }>(url);
  const endpoint = new Endpoint({ name: 'bench', url, ...fields });
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < EVENTS; i++) await endpoint.write([sample[i % sample.length]]);
  while (endpoint.stats.counters.Successes < EVENTS) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  const cpuPerEvent = (cpuMs(cpu) * 1000) / EVENTS;
  await endpoint.close();
  const after = await getJson<{ events: number; requests: number }>(url);
  return { perSecond: EVENTS / seconds, cpuPerEvent, events: after.events - before.events, requests: after.requests - before.requests };
}

function collectingBridge(includeReferences: boolean): { bridge: Bridge; events: Event[] } {
  const events: Event[] = [];
  const sink: Sink = { write: async (e) => void events.push(...e), close: async () => undefined };
  const bridge = new Bridge({
    sink,
    urls: urlBuilderFor('http://127.0.0.1:5000'),
    request: { id: 'b5b53c17-a57a-4750-b659-14626e37d071', addr: '127.0.0.1:32926', host: '127.0.0.1:5000', method: 'PUT', useragent: 'skopeo/1.9.3' },
    actor: { name: 'alice' },
    source: { addr: 'bench:5000', instanceID: 'ab8d43d2-48f3-4a4f-a005-7d1b41e0909c' },
    includeReferences,
  });
  return { bridge, events };
}

export async function benchDispatch(): Promise<Result[]> {
  const results: Result[] = [];

  // Building events: a manifest push (digest, references) and a blob push.
  const { bridge, events } = collectingBridge(true);
  const n = 50_000;
  for (let i = 0; i < 2000; i++) await bridge.manifestPushed('demo/app', TINY_MANIFEST, { tag: 'v1' }); // warm-up
  events.length = 0;
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await bridge.manifestPushed('demo/app', TINY_MANIFEST, { tag: 'v1' });
  results.push({ name: 'bridge: build one manifest push event (with references)', value: Number(process.hrtime.bigint() - t) / n / 1000, unit: 'µs/event' });
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await bridge.blobPushed('demo/app', { size: 143, digest: 'sha256:' + '9'.repeat(64) });
  results.push({ name: 'bridge: build one blob push event', value: Number(process.hrtime.bigint() - t) / n / 1000, unit: 'µs/event' });
  const sample = events.slice(0, EVENTS);

  // Delivery: an Endpoint sending one event per POST, as Distribution, to a receiver process.
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const url = `http://127.0.0.1:${firstLine.trim()}/`;
  try {
    const one = await timedDelivery(url, sample, { maxEvents: 1 });
    if (one.events !== EVENTS) throw new Error(`receiver counted ${one.events} events, expected ${EVENTS}`);
    results.push({
      name: `endpoint: ${EVENTS.toLocaleString('en-US')} events, one per POST, to another process`,
      value: one.perSecond,
      unit: 'events/s',
      note: 'target ≥ 5,000; Distribution 2.8.2 ≈ 1,800',
    });
    results.push({ name: 'endpoint: sender CPU per event delivered', value: one.cpuPerEvent, unit: 'µs/event' });

    // The same, Distribution's config as is: what piles up behind each POST goes in the next.
    const batched = await timedDelivery(url, sample, {});
    results.push({
      name: `endpoint: ${EVENTS.toLocaleString('en-US')} events, Distribution's config as is`,
      value: batched.perSecond,
      unit: 'events/s',
      note: `${(batched.events / batched.requests).toFixed(1)} events per POST, ${batched.cpuPerEvent.toFixed(1)} µs sender CPU per event`,
    });

    // Events ~1 ms apart, as a manifest GET load makes them: the default linger (after a
    // request that was not full, the next waits until this long after it started) against
    // none, and one per POST.
    const runs: [string, Partial<EndpointInit>][] = [
      [`Distribution's config as is (linger ${DEFAULTS.endpoint.lingerMs}ms)`, {}],
      ['linger 0', { lingerMs: 0 }],
      ['maxevents 1', { maxEvents: 1 }],
    ];
    for (const [label, fields] of runs) {
      const r = await paced(url, sample.slice(0, PACED), fields);
      results.push({
        name: `paced ~1 ms apart, ${label}: events per POST`,
        value: r.perPost,
        unit: 'events/POST',
        note: `${Math.round(r.perSecond)} events/s written; wait to delivery p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; ${r.cpuUs.toFixed(0)} µs sender CPU per event`,
      });
    }
  } finally {
    await stop(child);
  }
  return results;
}
