import type { EnvelopeVersion, Event } from '../model/event';
import { CloudEventFormatError, decodeBinary, decodeStructured, encodeBinary, encodeStructured, fromCloudEvent, toCloudEvent } from './cloudevents';
import { decodeEnvelope, encodeEnvelope, encodeEvent, envelopeMediaType } from './envelope';
import type { PayloadFormat } from './payload';

/**
 * The message protocols events are published over, each with its CloudEvents binding:
 * NATS (headers since NATS 2.2), AMQP (RabbitMQ's headers table stands for AMQP 1.0's
 * application-properties), MQTT 5 (user properties) and MQTT 3.1.1 (no metadata at all).
 */
export type BrokerBinding = 'nats' | 'amqp' | 'mqtt5' | 'mqtt3';

/** The formats a message carries; the bindings define no batch mode, and a message is one event. */
export type MessageFormat = Exclude<PayloadFormat, 'cloudevents-batch'>;
export const MESSAGE_FORMATS: readonly MessageFormat[] = ['distribution', 'cloudevents', 'cloudevents-binary'];

/** One event as a broker message: its payload and metadata, named as the protocol names them. */
export interface BrokerMessage {
  body: string;
  /**
   * NATS: the `Content-Type` header; AMQP: the `content-type` property; MQTT 5: the
   * `Content Type` property. Absent where the binding puts none (MQTT 3.1.1, NATS binary mode).
   */
  contentType?: string;
  /** NATS: message headers; AMQP: the headers table; MQTT 5: user properties. */
  properties: Record<string, string>;
}

/** The prefix of CloudEvents attributes in AMQP application properties; `cloudEvents:` is read too. */
export const AMQP_CE_PREFIX = 'cloudEvents_';
/** The prefix of CloudEvents attributes in NATS headers. */
export const NATS_CE_PREFIX = 'ce-';

/** The context attributes of an event, as strings (every one we write is a string). */
function attributesOf(event: Event): Record<string, string> {
  const { data: _data, ...attrs } = toCloudEvent(event);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = String(v);
  return out;
}

/**
 * How an endpoint turns one event into a message for a broker. `distribution` is
 * Distribution's envelope of that one event (its bytes, its media type); `cloudevents`
 * the structured mode (`application/cloudevents+json`); `cloudevents-binary` the binary
 * mode, whose attributes go where the protocol's binding says:
 *
 * | binding | attributes | `datacontenttype` |
 * |---|---|---|
 * | nats | headers `ce-<name>`, percent-encoded as in HTTP | header `ce-datacontenttype` |
 * | amqp | headers table `cloudEvents_<name>` | the `content-type` property |
 * | mqtt5 | user properties `<name>`, unchanged | the `Content Type` property |
 *
 * MQTT 3.1.1 has no metadata: only the structured mode (and the envelope) fit it, and a
 * RangeError says so for binary mode.
 */
export function brokerMessageEncoder(binding: BrokerBinding, format: MessageFormat, version: EnvelopeVersion = 'v1'): (event: Event) => BrokerMessage {
  const mqtt3 = binding === 'mqtt3';
  switch (format) {
    case 'distribution': {
      const contentType = mqtt3 ? undefined : envelopeMediaType(version);
      return (event) => ({ body: encodeEnvelope([event], { version }), ...(contentType ? { contentType } : {}), properties: {} });
    }
    case 'cloudevents':
      // MQTT 3.1.1 implies application/cloudevents+json; the others say it.
      return (event) => {
        const { body, headers } = encodeStructured(event);
        return { body, ...(mqtt3 ? {} : { contentType: headers['content-type'] }), properties: {} };
      };
    case 'cloudevents-binary':
      switch (binding) {
        case 'nats':
          return (event) => {
            // The HTTP binding's ce- headers, percent-encoded alike; datacontenttype is one of them.
            const { body, headers } = encodeBinary(event);
            const properties: Record<string, string> = {};
            for (const [name, value] of Object.entries(headers)) {
              properties[name === 'content-type' ? `${NATS_CE_PREFIX}datacontenttype` : name] = value;
            }
            return { body, properties };
          };
        case 'amqp':
        case 'mqtt5':
          return (event) => {
            const { datacontenttype, ...attrs } = attributesOf(event);
            const prefix = binding === 'amqp' ? AMQP_CE_PREFIX : '';
            const properties: Record<string, string> = {};
            for (const [name, value] of Object.entries(attrs)) properties[prefix + name] = value;
            return { body: encodeEvent(event, { indent: false }), contentType: datacontenttype, properties };
          };
        case 'mqtt3':
          throw new RangeError('MQTT 3.1.1 carries no message properties: CloudEvents binary mode needs MQTT 5; use format cloudevents (structured)');
      }
  }
}

function isCloudEventsType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.trim().toLowerCase().startsWith('application/cloudevents');
}

/** A property read by name in any case (NATS header names are case-insensitive). */
function caseless(properties: Record<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(properties)) out.set(k.toLowerCase(), v);
  return out;
}

/**
 * The event a broker message carries, whatever the format it was sent in: the structured
 * mode (a `Content-Type` of `application/cloudevents…`, or a JSON CloudEvent on MQTT
 * 3.1.1), the binary mode (the binding's attribute properties), or an envelope of one
 * event. What a consumer in Node, or a test, reads messages with. Throws
 * CloudEventFormatError or EnvelopeFormatError for a message that is none of these.
 */
export function decodeBrokerMessage(binding: BrokerBinding, message: { body: string | Buffer; contentType?: string; properties?: Record<string, unknown> }): Event {
  const body = typeof message.body === 'string' ? message.body : message.body.toString('utf8');
  const props = message.properties ?? {};
  const named = caseless(props);
  const contentType = message.contentType ?? (binding === 'nats' ? (named.get('content-type') as string | undefined) : undefined);
  if (isCloudEventsType(contentType)) return decodeStructured(body);
  switch (binding) {
    case 'nats':
      if (named.has(`${NATS_CE_PREFIX}specversion`)) {
        const headers: Record<string, string> = {};
        for (const [k, v] of named) if (k.startsWith(NATS_CE_PREFIX)) headers[k] = unquote(String(v));
        return decodeBinary(headers, body);
      }
      break;
    case 'amqp':
    case 'mqtt5': {
      const ce: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(props)) {
        const value = Buffer.isBuffer(v) ? v.toString('utf8') : v;
        if (binding === 'mqtt5') ce[k] = value;
        else if (k.startsWith(AMQP_CE_PREFIX) || k.startsWith('cloudEvents:')) ce[k.slice(AMQP_CE_PREFIX.length)] = value;
      }
      if (ce.specversion !== undefined) {
        if (contentType !== undefined) ce.datacontenttype = contentType;
        return fromCloudEvent({ ...ce, data: body });
      }
      break;
    }
    case 'mqtt3':
      break;
  }
  const parsed = parseJson(body);
  if (typeof parsed === 'object' && parsed !== null && 'specversion' in parsed) return fromCloudEvent(parsed);
  const { events } = decodeEnvelope(body);
  if (events.length !== 1) throw new CloudEventFormatError(`a broker message carries one event; this envelope has ${events.length}`);
  return events[0];
}

/** A header value as older senders wrote it, double-quoted with backslash escapes, unquoted. */
function unquote(value: string): string {
  const m = /^\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(value);
  return m ? m[1].replace(/\\(.)/g, '$1') : value;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new CloudEventFormatError(`message body is not valid JSON: ${(err as Error).message}`);
  }
}
