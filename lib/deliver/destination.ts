import type https from 'node:https';
import type { EndpointConfig } from '../config/normalize';
import type { Event } from '../model/event';
import { payloadEncoder, type EncodedRequest } from '../codec/payload';
import type { BrokerMessage, MessageFormat } from '../codec/cloudevents-bindings';
import { HttpSink, type HttpSinkHooks } from './http-sink';
import { NatsSink } from './nats-sink';
import { AmqpSink } from './amqp-sink';
import { MqttSink } from './mqtt-sink';
import type { Sink } from './sink';

/** The transports an endpoint URL's scheme picks. */
export type DestinationKind = 'http' | 'nats' | 'amqp' | 'mqtt';

/** The transport of a URL's scheme; undefined for a scheme no destination speaks. */
export function destinationKind(url: string): DestinationKind | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'http':
    case 'https':
      return 'http';
    case 'nats':
      return 'nats';
    case 'amqp':
    case 'amqps':
      return 'amqp';
    case 'mqtt':
    case 'mqtts':
      return 'mqtt';
    default:
      return undefined;
  }
}

/** A sink that delivers to an endpoint, and the URL it shows (credentials redacted). */
export type DestinationSink = Sink & { readonly url: string };

export interface DestinationOptions {
  /** HTTP: turns the events of one request into its body (the endpoint's encoder, which may reuse a measured body). */
  encode?(events: readonly Event[]): EncodedRequest;
  /** HTTP: headers computed from the final body, e.g. signatures. */
  sign?(body: string, events: readonly Event[]): Record<string, string>;
  /** HTTP: agent for `https:` URLs. */
  httpsAgent?: https.Agent;
  /** Brokers: turns one event into a message, replacing the configured `format`. */
  encodeMessage?(event: Event): BrokerMessage;
  /** What each attempt reports: the stats and the attempt log. */
  hooks?: HttpSinkHooks;
}

/**
 * The sink at the bottom of an endpoint's chain, picked by its URL's scheme: `http(s)://`
 * POSTs (HttpSink), `nats://` publishes to JetStream (NatsSink), `amqp(s)://` to a
 * RabbitMQ exchange (AmqpSink), `mqtt(s)://` to an MQTT broker (MqttSink). Every one sits
 * under the same queue, retrying sink and breaker, and reports to the same hooks.
 */
export function createDestinationSink(config: EndpointConfig, options: DestinationOptions = {}): DestinationSink {
  const kind = destinationKind(config.url);
  const common = {
    timeoutMs: config.timeoutMs,
    headers: config.headers,
    hooks: options.hooks,
    format: config.format as MessageFormat,
    version: config.envelope,
    encode: options.encodeMessage,
  };
  switch (kind) {
    case 'nats':
      return new NatsSink(config.url, { ...common, subject: config.subject, stream: config.stream, createStream: config.createStream });
    case 'amqp':
      return new AmqpSink(config.url, { ...common, exchange: config.exchange, routingKey: config.routingKey });
    case 'mqtt':
      return new MqttSink(config.url, { ...common, topic: config.topic, qos: config.qos, mqttVersion: config.mqttVersion });
    case 'http':
    case undefined:
      // The normaliser admits no other scheme; an unknown one fails in the HTTP sink's URL check.
      return new HttpSink(config.url, {
        timeoutMs: config.timeoutMs,
        headers: config.headers,
        httpsAgent: options.httpsAgent,
        encode: options.encode ?? payloadEncoder(config.format, config.envelope),
        sign: options.sign,
        hooks: options.hooks,
      });
  }
}
