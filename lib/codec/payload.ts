import { encodeBatch, encodeBinary, encodeStructured } from './cloudevents';
import type { PayloadFormat } from '../config/load';
import { encodeEnvelope, envelopeMediaType } from './envelope';
import type { EnvelopeVersion, Event } from '../model/event';
import type { EncodedRequest } from '../deliver/http-sink';

/**
 * How an endpoint turns the events of one request into a body and its headers.
 * `distribution` is Distribution's envelope (byte for byte with one event); the others
 * are CloudEvents 1.0 modes, whose single-event modes expect one event per request.
 */
export function payloadEncoder(format: PayloadFormat, version: EnvelopeVersion = 'v1'): (events: readonly Event[]) => EncodedRequest {
  switch (format) {
    case 'distribution': {
      const headers = { 'Content-Type': envelopeMediaType(version) };
      return (events) => ({ body: encodeEnvelope(events, { version }), headers });
    }
    case 'cloudevents-batch':
      return (events) => encodeBatch(events);
    case 'cloudevents':
      return (events) => encodeStructured(single(events, format));
    case 'cloudevents-binary':
      return (events) => encodeBinary(single(events, format));
  }
}

function single(events: readonly Event[], format: string): Event {
  if (events.length !== 1) throw new RangeError(`${format} carries exactly one event per request, got ${events.length}`);
  return events[0];
}
