import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { DEFAULTS } from '../config/defaults';
import { AMQP_ROUTES, routeTemplate } from '../codec/route-template';
import { amqpDriver } from './broker-drivers';
import { BrokerSink, remainingMs, type BrokerConnection, type BrokerSinkOptions, type Outgoing } from './broker-sink';

export interface AmqpSinkOptions extends BrokerSinkOptions {
  /** The exchange events are published to (`exchange`); it must exist. @default 'amq.topic' */
  exchange?: string;
  /** Routing key template (`routingkey`). @default 'registry.events.{action}.{kind}' */
  routingKey?: string;
}

interface AmqpLink extends BrokerConnection {
  channel: ConfirmChannel;
  /** Ids of messages the broker returned as unroutable; their confirmation follows the return. */
  returned: Set<string>;
  /** Why the broker closed the channel (`NOT_FOUND - no exchange …`), which says more than "channel closed". */
  failure?: Error;
}

/** The broker confirmed a message no queue took: it is gone, so the write fails and is retried. */
export class UnroutableError extends Error {
  override readonly name = 'UnroutableError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(`no queue is bound to exchange ${JSON.stringify(exchange)} for routing key ${JSON.stringify(routingKey)}; the message was returned`);
  }
}

/**
 * Publishes each event to a RabbitMQ exchange (AMQP 0-9-1) on a confirm channel and waits
 * for the broker's confirmation. Messages are persistent and mandatory: one no queue takes
 * is returned and counts as a failure, so events wait for a binding rather than vanish.
 * `message-id` is the event id. URL: `amqp[s]://[user:password@]host[:5672][/vhost]`,
 * as RabbitMQ reads it.
 */
export class AmqpSink extends BrokerSink<AmqpLink> {
  private readonly exchange: string;
  private readonly routingKey: ReturnType<typeof routeTemplate>;
  private readonly amqp: ReturnType<typeof amqpDriver>;

  constructor(url: string, options: AmqpSinkOptions = {}) {
    super(url, 'amqp', options);
    this.amqp = amqpDriver(`the endpoint ${this.url}`);
    this.exchange = options.exchange ?? DEFAULTS.broker.exchange;
    this.routingKey = routeTemplate(options.routingKey ?? DEFAULTS.broker.routingKey, AMQP_ROUTES);
  }

  protected async open(deadline: number): Promise<AmqpLink> {
    const model: ChannelModel = await this.amqp.connect(this.target, {
      timeout: remainingMs(deadline, DEFAULTS.endpoint.timeoutMs),
      clientProperties: { connection_name: DEFAULTS.http.userAgent },
    });
    // At once: a connection cut while the channel opens emits its error before the channel
    // is there, and an error without a listener would be thrown out of the process. Errors
    // also arrive as failed confirmations (or as the rejected channel open).
    model.on('error', () => undefined);
    try {
      const channel = await model.createConfirmChannel();
      const link: AmqpLink = { channel, returned: new Set(), close: () => model.close() };
      const gone = () => this.lost(link);
      model.on('close', gone);
      channel.on('error', (err: Error) => (link.failure = err)).on('close', gone);
      channel.on('return', (msg: Message) => {
        if (typeof msg.properties.messageId === 'string') link.returned.add(msg.properties.messageId);
      });
      return link;
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
  }

  protected publish(link: AmqpLink, outgoing: readonly Outgoing[]): Promise<void>[] {
    return outgoing.map(
      ({ event, message, properties }) =>
        new Promise<void>((resolve, reject) => {
          const key = this.routingKey(event);
          const options = {
            persistent: true,
            mandatory: true,
            messageId: event.id,
            ...(message.contentType ? { contentType: message.contentType } : {}),
            headers: properties,
            appId: DEFAULTS.http.userAgent,
          };
          link.channel.publish(this.exchange, key, Buffer.from(message.body, 'utf8'), options, (err) => {
            if (err) {
              const refused = err instanceof Error ? err : new Error('the broker refused the message (nack)');
              // The channel's error, when the broker closed it, is emitted just after the failed confirmations.
              return void setImmediate(() => reject(link.failure ?? refused));
            }
            // RabbitMQ sends the return of an unroutable mandatory message before its confirmation.
            if (link.returned.delete(event.id)) return reject(new UnroutableError(this.exchange, key));
            resolve();
          });
        }),
    );
  }
}
