// Issue "core": 50,000 events through an Endpoint to a receiver in another process on
// loopback, one event per envelope as Distribution sends them; and the cost of
// building one event in the bridge.
import { Bridge, Endpoint, urlBuilderFor, type Sink } from '../lib/pipeline';
import type { Event } from '../lib';
import { cpuMs, getJson, startChild, stop, type Result } from './util';

const EVENTS = Number(process.env.BENCH_DISPATCH_EVENTS ?? 50_000);

const manifest = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  payload: Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 292, digest: 'sha256:' + '2'.repeat(64) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 143, digest: 'sha256:' + '9'.repeat(64) }],
    }),
  ),
};

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
  for (let i = 0; i < 2000; i++) await bridge.manifestPushed('demo/app', manifest, { tag: 'v1' }); // warm-up
  events.length = 0;
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await bridge.manifestPushed('demo/app', manifest, { tag: 'v1' });
  results.push({ name: 'bridge: build one manifest push event (with references)', value: Number(process.hrtime.bigint() - t) / n / 1000, unit: 'µs/event' });
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await bridge.blobPushed('demo/app', { size: 143, digest: 'sha256:' + '9'.repeat(64) });
  results.push({ name: 'bridge: build one blob push event', value: Number(process.hrtime.bigint() - t) / n / 1000, unit: 'µs/event' });
  const sample = events.slice(0, EVENTS);

  // Delivery: an Endpoint with Distribution's defaults, to a receiver process.
  const { child, firstLine } = await startChild('bench/counting-receiver.ts');
  const url = `http://127.0.0.1:${firstLine.trim()}/`;
  try {
    const endpoint = new Endpoint({ name: 'bench', url });
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < EVENTS; i++) await endpoint.write([sample[i % sample.length]]);
    while (endpoint.stats.counters.Successes < EVENTS) await new Promise((r) => setTimeout(r, 5));
    const seconds = (performance.now() - started) / 1000;
    const cpuPerEvent = (cpuMs(cpu) * 1000) / EVENTS;
    await endpoint.close();
    const got = await getJson<{ events: number; requests: number }>(url);
    if (got.events !== EVENTS) throw new Error(`receiver counted ${got.events} events, expected ${EVENTS}`);
    results.push({
      name: `endpoint: ${EVENTS.toLocaleString('en-US')} events, one per POST, to another process`,
      value: EVENTS / seconds,
      unit: 'events/s',
      note: 'target ≥ 5,000; Distribution 2.8.2 ≈ 1,800',
    });
    results.push({ name: 'endpoint: sender CPU per event delivered', value: cpuPerEvent, unit: 'µs/event' });
  } finally {
    await stop(child);
  }
  return results;
}
