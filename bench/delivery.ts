// Issue "delivery beyond Distribution": draining an outage's backlog with batching, and
// what signing costs. Every figure pair is measured in the same run.
import { Endpoint, MemoryStore } from '../lib/pipeline';
import type { Event } from '../lib';
import { makeBenchEvents } from './events';
import { getJson, startChild, stop, type Result } from './util';

const BACKLOG = Number(process.env.BENCH_BATCH_BACKLOG ?? 100_000);
// Many short alternating rounds: on this shared machine throughput drifts over seconds.
const SIGNED = Number(process.env.BENCH_SIGNED_EVENTS ?? 4_000);
const ROUNDS = 15;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** Fills a store with `events` (the outage), then times the endpoint delivering all of them. */
async function drain(url: string, events: Event[], options: { maxEvents: number; secrets?: string[] }): Promise<number> {
  return (await drainMeasured(url, events, options)).rate;
}

/** `drain`, also giving the sender's CPU per event in µs. */
async function drainMeasured(url: string, events: Event[], options: { maxEvents: number; secrets?: string[] }): Promise<{ rate: number; cpuUs: number }> {
  const store = new MemoryStore();
  await store.append(events);
  const before = await getJson<{ events: number }>(url);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const endpoint = new Endpoint({ name: 'bench', url, maxEvents: options.maxEvents, secrets: options.secrets ?? [] }, { store });
  while (endpoint.stats.counters.Successes < events.length) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await endpoint.close();
  const after = await getJson<{ events: number }>(url);
  if (after.events - before.events !== events.length) throw new Error(`receiver counted ${after.events - before.events} events, expected ${events.length}`);
  return { rate: events.length / seconds, cpuUs: (used.user + used.system) / events.length };
}

export async function benchDelivery(): Promise<Result[]> {
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const url = `http://127.0.0.1:${firstLine.trim()}/`;
  const results: Result[] = [];
  try {
    const events = makeBenchEvents(BACKLOG);
    const one = await drain(url, events.slice(0, 20_000), { maxEvents: 1 });
    const batched = await drain(url, events, { maxEvents: 500 });
    results.push({ name: 'drain after an outage, one event per POST (20,000)', value: one, unit: 'events/s' });
    results.push({
      name: `drain after an outage, up to 500 events per POST (${BACKLOG.toLocaleString('en-US')})`,
      value: batched,
      unit: 'events/s',
      note: `${(batched / one).toFixed(1)}× one per POST; target ≥ 36,000 (20 × Distribution's 1,800)`,
    });

    // Signing: alternate unsigned and signed runs so that drift in machine load hits both,
    // and report the median of the per-round ratios.
    const sample = events.slice(0, SIGNED);
    const unsigned: number[] = [];
    const signed: number[] = [];
    const cpu = { signed: [] as number[], unsigned: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [false, true] : [true, false];
      for (const withSecret of order) {
        const { rate, cpuUs } = await drainMeasured(url, sample, { maxEvents: 1, secrets: withSecret ? [SECRET] : [] });
        (withSecret ? signed : unsigned).push(rate);
        cpu[withSecret ? 'signed' : 'unsigned'].push(cpuUs);
      }
    }
    const ratios = signed.map((v, i) => v / unsigned[i]);
    results.push({ name: `one event per POST, unsigned (${SIGNED.toLocaleString('en-US')}, median of ${ROUNDS})`, value: median(unsigned), unit: 'events/s' });
    results.push({ name: 'one event per POST, signed (Standard Webhooks, one secret)', value: median(signed), unit: 'events/s' });
    results.push({
      name: 'signing: signed / unsigned throughput, one event per POST',
      value: median(ratios),
      unit: 'ratio',
      note: `median of ${ratios.length} rounds, ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)}; target ≥ 0.9`,
    });
    results.push({
      name: 'signing: sender CPU per event, unsigned / signed',
      value: median(cpu.unsigned) / median(cpu.signed),
      unit: 'ratio',
      note: `${median(cpu.unsigned).toFixed(0)} / ${median(cpu.signed).toFixed(0)} µs per event, medians`,
    });
    const batchedRatios: number[] = [];
    for (let round = 0; round < 3; round++) {
      const batchedUnsigned = await drain(url, events, { maxEvents: 500 });
      const batchedSigned = await drain(url, events, { maxEvents: 500, secrets: [SECRET] });
      batchedRatios.push(batchedSigned / batchedUnsigned);
    }
    results.push({
      name: 'signing: signed / unsigned throughput, 500 events per POST',
      value: median(batchedRatios),
      unit: 'ratio',
      note: `median of ${batchedRatios.map((r) => r.toFixed(2)).join(', ')}`,
    });
  } finally {
    await stop(child);
  }
  return results;
}
