// Throughput of `createReceiver` on Express, in its own process (bench/receiver-server.ts):
// events verified and handed to the handler per second, for Distribution envelopes of one
// event, of 100 events, and the same signed with a Standard Webhooks secret, and for a
// CloudEvents batch of 100. The load
// comes from this process over a few keep-alive connections; bodies and signatures are
// built before the clock starts, so the figures are the receiver's. Last, what the field
// checks of `decodeEnvelope` (and of `decodeBatch`) cost over a bare `JSON.parse` of the
// same bodies, and their share of the receiver's CPU per event (issue 10: at most 5%).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeEnvelope, encodeEnvelope, EVENTS_MEDIA_TYPE_V1, signWebhook, type Event } from '../lib';
import { CLOUDEVENTS_BATCH_MEDIA_TYPE, newEventId } from '../lib/pipeline';
import { decodeBatch, encodeBatch } from '../lib/codec/cloudevents';
import { getJson, ROOT, startChild, stopWithin, type Result } from './util';

/** Events per case, unless the time limit comes first. */
const EVENTS = Number(process.env.BENCH_RECEIVER_EVENTS ?? 20_000);
const BATCH_EVENTS = Number(process.env.BENCH_RECEIVER_BATCH_EVENTS ?? 100_000);
const WARMUP_EVENTS = 1_000;
const CONCURRENCY = 4;
const TIME_LIMIT_MS = 20_000;
/** Events per round of the checks' comparison, and rounds (each times both variants). */
const CHECK_EVENTS = Number(process.env.BENCH_RECEIVER_CHECK_EVENTS ?? 20_000);
const CHECK_ROUNDS = 25;
/** The share of the receiver's CPU per event the field checks may take (issue 10). */
const CHECK_TARGET_PERCENT = 5;
const SECRET = 'whsec_' + Buffer.from('registry-notifications bench secret').toString('base64');

const FIXTURE = path.resolve(ROOT, '..', 'shared', 'fixtures', 'distribution-2.8.2', 'manifest-pull-by-tag.body');

/** A real Distribution pull event, or a built one when the fixtures are not beside the repo. */
function templateEvent(): Event {
  try {
    return decodeEnvelope(readFileSync(FIXTURE)).events[0];
  } catch {
    const digest = 'sha256:' + 'f'.repeat(64);
    return {
      id: newEventId(),
      timestamp: new Date().toISOString(),
      action: 'pull',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 345,
        digest,
        length: 345,
        repository: 'demo/app',
        url: `http://127.0.0.1:5000/v2/demo/app/manifests/${digest}`,
        tag: 'v1',
      },
      request: { id: newEventId(), addr: '127.0.0.1:32886', host: '127.0.0.1:5000', method: 'GET', useragent: 'skopeo/1.9.3' },
      actor: { name: 'alice' },
      source: { addr: 'vm:5000', instanceID: newEventId() },
    } as Event;
  }
}

interface Delivery {
  body: Buffer;
  headers: Record<string, string>;
  events: number;
}

type Format = 'envelope' | 'cloudevents';

/** `total` events, in envelopes (or CloudEvents batches) of `perEnvelope`, each event with a fresh id so none is a duplicate. */
function deliveries(template: Event, total: number, perEnvelope: number, signed: boolean, format: Format = 'envelope'): Delivery[] {
  const out: Delivery[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let sent = 0; sent < total; sent += perEnvelope) {
    const n = Math.min(perEnvelope, total - sent);
    const events = Array.from({ length: n }, () => ({ ...template, id: newEventId() }));
    const body = Buffer.from(format === 'envelope' ? encodeEnvelope(events) : encodeBatch(events).body);
    const type = format === 'envelope' ? EVENTS_MEDIA_TYPE_V1 : CLOUDEVENTS_BATCH_MEDIA_TYPE;
    const headers: Record<string, string> = { 'Content-Type': type, 'Content-Length': String(body.length) };
    if (signed) Object.assign(headers, signWebhook([SECRET], newEventId(), now, body));
    out.push({ body, headers, events: n });
  }
  return out;
}

function post(url: string, agent: http.Agent, d: Delivery): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: d.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`receiver answered ${res.statusCode}: ${text.slice(0, 300)}`));
        const { accepted } = JSON.parse(text) as { accepted: number };
        if (accepted !== d.events) return reject(new Error(`receiver accepted ${accepted} of ${d.events} events`));
        resolve();
      });
    });
    req.on('error', reject);
    req.end(d.body);
  });
}

/** Sends the deliveries over CONCURRENCY keep-alive sockets until done or TIME_LIMIT_MS; returns events sent and seconds. */
async function send(url: string, list: Delivery[]): Promise<{ events: number; seconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  let events = 0;
  const started = performance.now();
  const deadline = started + TIME_LIMIT_MS;
  const worker = async () => {
    while (next < list.length && performance.now() < deadline) {
      const d = list[next++];
      await post(url, agent, d);
      events += d.events;
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    return { events, seconds: (performance.now() - started) / 1000 };
  } finally {
    agent.destroy();
  }
}

/** CPU µs of `decode` per event over `list`. */
function cpuPerEvent(list: readonly Delivery[], decode: (body: Buffer) => number): number {
  let events = 0;
  const from = process.cpuUsage();
  for (const d of list) events += decode(d.body);
  const used = process.cpuUsage(from);
  const expected = list.reduce((n, d) => n + d.events, 0);
  if (events !== expected) throw new Error(`decoded ${events} events of ${expected}`);
  return (used.user + used.system) / events;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** How the receiver decodes each format, checks included; a bare JSON.parse is the same without. */
const DECODERS: Record<Format, (body: Buffer) => number> = {
  envelope: (body) => decodeEnvelope(body).events.length,
  cloudevents: (body) => decodeBatch(body).length,
};

function parseOnly(body: Buffer): number {
  const parsed = JSON.parse(body.toString('utf8')) as unknown[] | { events: unknown[] };
  return Array.isArray(parsed) ? parsed.length : parsed.events.length;
}

/**
 * µs per event of the receiver's decoding with its checks and without (`JSON.parse` of the
 * same bodies), in alternating rounds: the median round of each, and the median of the
 * rounds' differences (what the checks add).
 */
function checkCost(list: readonly Delivery[], format: Format): { checked: number; parsed: number; extra: number } {
  const checked: number[] = [];
  const parsed: number[] = [];
  const extra: number[] = [];
  for (let round = 0; round < CHECK_ROUNDS + 2; round++) {
    const c = cpuPerEvent(list, DECODERS[format]);
    const p = cpuPerEvent(list, parseOnly);
    if (round < 2) continue; // warm-up
    checked.push(c);
    parsed.push(p);
    extra.push(c - p);
  }
  return { checked: median(checked), parsed: median(parsed), extra: median(extra) };
}

interface Case {
  name: string;
  path: '/plain' | '/signed';
  total: number;
  perEnvelope: number;
  format?: Format;
}

export async function benchReceiver(): Promise<Result[]> {
  const template = templateEvent();
  const cases: Case[] = [
    { name: 'one event per envelope', path: '/plain', total: EVENTS, perEnvelope: 1 },
    { name: '100 events per envelope', path: '/plain', total: BATCH_EVENTS, perEnvelope: 100 },
    { name: 'one event per envelope, signed', path: '/signed', total: EVENTS, perEnvelope: 1 },
    { name: '100 events per envelope, signed', path: '/signed', total: BATCH_EVENTS, perEnvelope: 100 },
    { name: '100 CloudEvents per batch', path: '/plain', total: BATCH_EVENTS, perEnvelope: 100, format: 'cloudevents' },
  ];
  const results: Result[] = [];
  /** Receiver CPU per event of the unsigned cases, by name. */
  const receiverCpu = new Map<string, number>();
  const { child, firstLine } = await startChild('bench/receiver-server.ts', [], { BENCH_SECRET: SECRET });
  const base = `http://127.0.0.1:${firstLine.trim()}`;
  try {
    for (const c of cases) {
      const signed = c.path === '/signed';
      // A receiver per case, and another for its warm-up: the deduplicator of each holds
      // only the ids of its own case (at most its default 100,000).
      const slug = c.name.replace(/[^a-z0-9]+/gi, '-');
      await send(`${base}${c.path}/warmup-${slug}`, deliveries(template, WARMUP_EVENTS, c.perEnvelope, signed, c.format));
      const url = `${base}${c.path}/${slug}`;
      const list = deliveries(template, c.total, c.perEnvelope, signed, c.format);
      const before = await getJson<{ events: number; cpuUs: number }>(`${base}/count`);
      const { events, seconds } = await send(url, list);
      const after = await getJson<{ events: number; cpuUs: number }>(`${base}/count`);
      const handed = after.events - before.events;
      if (handed !== events) throw new Error(`${c.name}: sent ${events} events, the handler got ${handed}`);
      const label = `receiver: ${c.name}`;
      results.push({
        name: label,
        value: events / seconds,
        unit: 'events/s',
        note: `${events.toLocaleString('en-US')} events, ${CONCURRENCY} keep-alive connections`,
      });
      const cpu = (after.cpuUs - before.cpuUs) / events;
      results.push({ name: `${label}, receiver CPU`, value: cpu, unit: 'µs/event' });
      if (!signed) receiverCpu.set(c.name, cpu);
    }
  } finally {
    await stopWithin(child);
  }
  for (const c of cases.filter((x) => x.path === '/plain')) {
    const format = c.format ?? 'envelope';
    const { checked, parsed, extra } = checkCost(deliveries(template, CHECK_EVENTS, c.perEnvelope, false, format), format);
    const cpu = receiverCpu.get(c.name)!;
    const decoder = format === 'envelope' ? 'decodeEnvelope' : 'decodeBatch';
    results.push({
      name: `receiver checks, ${c.name}`,
      value: extra,
      unit: 'µs/event',
      note: `${decoder} ${checked.toFixed(2)} vs JSON.parse ${parsed.toFixed(2)} µs/event, median of ${CHECK_ROUNDS} alternating rounds`,
    });
    results.push({
      name: `receiver checks, ${c.name}, CPU share`,
      value: (100 * extra) / cpu,
      unit: '%',
      note: `of the receiver's ${cpu.toFixed(1)} µs/event above; target at most ${CHECK_TARGET_PERCENT}%`,
    });
  }
  return results;
}
