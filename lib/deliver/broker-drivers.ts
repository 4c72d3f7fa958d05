import type * as NatsTransport from '@nats-io/transport-node';
import type * as NatsJetStream from '@nats-io/jetstream';
import type * as Amqplib from 'amqplib';
import type * as Mqtt from 'mqtt';
import { loadOptionalPackage } from '../stores/drivers';

/**
 * The broker clients are optional peer dependencies, as the store drivers are: only an
 * endpoint whose URL names that broker needs its client, and it is loaded when that
 * endpoint's sink is made (at start-up, and off the path of the first delivery: `mqtt`
 * alone takes a third of a second to load). A missing one throws `MissingDriverError`
 * naming the package to install and the endpoint URL that needed it.
 */
const load = loadOptionalPackage;

/** A NATS client connection. */
export type NatsConnection = Awaited<ReturnType<typeof NatsTransport.connect>>;
/** NATS message headers. */
export type NatsHeaders = NonNullable<NatsJetStream.JetStreamPublishOptions['headers']>;
/** The transport package, with the `headers()` factory it re-exports from the NATS core package. */
type NatsModule = typeof NatsTransport & { headers(): NatsHeaders };

/** `@nats-io/transport-node` (the connection) and `@nats-io/jetstream` (publish with acknowledgement). */
export function natsDriver(neededBy: string): { nats: NatsModule; jetstream: typeof NatsJetStream } {
  return {
    nats: load<NatsModule>('@nats-io/transport-node', neededBy),
    jetstream: load<typeof NatsJetStream>('@nats-io/jetstream', neededBy),
  };
}

/** `amqplib`, the AMQP 0-9-1 client for RabbitMQ. */
export function amqpDriver(neededBy: string): typeof Amqplib {
  return load<typeof Amqplib>('amqplib', neededBy);
}

/** `mqtt` (MQTT.js), for MQTT 3.1.1 and 5. */
export function mqttDriver(neededBy: string): typeof Mqtt {
  return load<typeof Mqtt>('mqtt', neededBy);
}
