import type { EnvelopeVersion, Event } from '../model/event';
import { encodeBatch, encodeBinary, encodeStructured } from './cloudevents';
import { encodeEnvelope, envelopeMediaType } from './envelope';

/** A request body and the headers that describe it. */
export interface EncodedRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * How events are put in a request body: Distribution's envelope, or CloudEvents 1.0 in
 * structured mode (one event a request), binary mode (one event, attributes in headers)
 * or batch mode (a JSON array).
 */
export type PayloadFormat = 'distribution' | 'cloudevents' | 'cloudevents-binary' | 'cloudevents-batch';
export const PAYLOAD_FORMATS: readonly PayloadFormat[] = ['distribution', 'cloudevents', 'cloudevents-binary', 'cloudevents-batch'];

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
