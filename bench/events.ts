import { Bridge, urlBuilderFor } from '../lib/pipeline';
import type { Event } from '../lib';

/** Realistic events (a layer push by skopeo), built by the bridge as a registry would. */
export function makeBenchEvents(n: number): Event[] {
  const events: Event[] = [];
  const bridge = new Bridge({
    sink: { write: async (e) => void events.push(...e), close: async () => undefined },
    urls: urlBuilderFor('http://127.0.0.1:5000'),
    request: { id: 'b5b53c17-a57a-4750-b659-14626e37d071', addr: '127.0.0.1:32926', host: '127.0.0.1:5000', method: 'PUT', useragent: 'skopeo/1.9.3' },
    actor: { name: 'alice' },
    source: { addr: 'bench:5000', instanceID: 'ab8d43d2-48f3-4a4f-a005-7d1b41e0909c' },
  });
  for (let i = 0; i < n; i++) void bridge.blobPushed('demo/app', { size: 143 + i, digest: 'sha256:' + i.toString(16).padStart(64, '0') });
  return events;
}
