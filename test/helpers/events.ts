import { eventTimestamp, newEventId } from '../../lib/model/event';
import type { Event, EventAction } from '../../lib';

let counter = 0;

/** A plausible event; `overrides.target` replaces the target wholesale. */
export function makeEvent(action: EventAction = 'push', overrides: Partial<Event> = {}): Event {
  counter++;
  return {
    id: newEventId(),
    timestamp: eventTimestamp(),
    action,
    target: {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 345,
      digest: 'sha256:' + counter.toString(16).padStart(64, '0'),
      length: 345,
      repository: 'demo/app',
      url: 'http://127.0.0.1:5000/v2/demo/app/manifests/sha256:' + counter.toString(16).padStart(64, '0'),
      tag: 'v1',
    },
    request: { id: newEventId(), addr: '127.0.0.1:40000', host: '127.0.0.1:5000', method: 'PUT', useragent: 'test' },
    actor: { name: 'alice' },
    source: { addr: 'test:5000', instanceID: '00000000-0000-4000-8000-000000000000' },
    ...overrides,
  };
}

export function makeEvents(n: number, action: EventAction = 'push'): Event[] {
  return Array.from({ length: n }, () => makeEvent(action));
}
