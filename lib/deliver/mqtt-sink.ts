import { randomUUID } from 'node:crypto';
import type { MqttClient, IClientPublishOptions } from 'mqtt';
import { DEFAULTS } from '../config/defaults';
import { MQTT_ROUTES, routeTemplate } from '../codec/route-template';
import { mqttDriver } from './broker-drivers';
import { BrokerSink, remainingMs, type BrokerConnection, type BrokerSinkOptions, type Outgoing } from './broker-sink';

export interface MqttSinkOptions extends BrokerSinkOptions {
  /** Topic template (`topic`). @default 'registry/events/{action}/{kind}' */
  topic?: string;
  /** Quality of service (`qos`): 1, at least once, or 2, exactly once to the broker. @default 1 */
  qos?: 1 | 2;
  /** Protocol (`mqttversion`): `5`, or `3.1.1`, which carries no properties. @default '5' */
  mqttVersion?: '5' | '3.1.1';
}

/** MQTT 5 user property that carries the event id, for consumers to drop duplicates by. */
export const MQTT_EVENT_ID_PROPERTY = 'event-id';

interface MqttLink extends BrokerConnection {
  client: MqttClient;
}

/**
 * Publishes each event to an MQTT broker with QoS 1 (or 2) and waits for its
 * acknowledgement (PUBACK, or PUBCOMP). With MQTT 5 the event id goes in the user
 * property `event-id` and the content type in the Content Type property; MQTT 3.1.1
 * carries the payload alone. Sessions are clean: what is unacknowledged when the
 * connection drops is written again by the retrying sink, not resent by the client.
 * URL: `mqtt[s]://[user:password@]host[:1883]`.
 */
export class MqttSink extends BrokerSink<MqttLink> {
  private readonly topic: ReturnType<typeof routeTemplate>;
  private readonly qos: 1 | 2;
  private readonly v5: boolean;
  private readonly mqtt: ReturnType<typeof mqttDriver>;

  constructor(url: string, options: MqttSinkOptions = {}) {
    const version = options.mqttVersion ?? DEFAULTS.broker.mqttVersion;
    super(url, version === '5' ? 'mqtt5' : 'mqtt3', options);
    this.v5 = version === '5';
    this.qos = options.qos ?? DEFAULTS.broker.qos;
    this.topic = routeTemplate(options.topic ?? DEFAULTS.broker.topic, MQTT_ROUTES);
    this.mqtt = mqttDriver(`the endpoint ${this.url}`);
  }

  protected open(deadline: number): Promise<MqttLink> {
    const client = this.mqtt.connect(this.target, {
      protocolVersion: this.v5 ? 5 : 4,
      clientId: `${DEFAULTS.http.userAgent}-${randomUUID().slice(0, 8)}`,
      clean: true,
      // Reconnecting is this sink's business: the next write connects again.
      reconnectPeriod: 0,
      connectTimeout: remainingMs(deadline, DEFAULTS.endpoint.timeoutMs),
    });
    const link: MqttLink = { client, close: () => client.endAsync(true) };
    // Always listened to: a second error (after the first failed the connect) must not be
    // thrown out of the process. Errors reach the writer as failed connects and publishes.
    client.on('error', () => undefined);
    return new Promise<MqttLink>((resolve, reject) => {
      const fail = (err?: Error) => {
        client.removeListener('connect', ok);
        client.end(true);
        reject(err ?? new Error('connection closed before the broker accepted it'));
      };
      const ok = () => {
        client.removeListener('error', fail).removeListener('close', fail);
        client.on('close', () => this.lost(link));
        resolve(link);
      };
      client.once('connect', ok).once('error', fail).once('close', fail);
    });
  }

  protected publish(link: MqttLink, outgoing: readonly Outgoing[]): Promise<void>[] {
    return outgoing.map(async ({ event, message, properties }) => {
      const options: IClientPublishOptions = { qos: this.qos };
      if (this.v5) {
        options.properties = {
          userProperties: { ...properties, [MQTT_EVENT_ID_PROPERTY]: event.id },
          ...(message.contentType ? { contentType: message.contentType } : {}),
        };
      }
      await link.client.publishAsync(this.topic(event), message.body, options);
    });
  }
}
