import type { JetStreamClient, JetStreamPublishOptions } from '@nats-io/jetstream';
import { DEFAULTS } from '../config/defaults';
import { NATS_ROUTES, routePattern, routeTemplate } from '../codec/route-template';
import { natsDriver, type NatsConnection } from './broker-drivers';
import { BrokerSink, remainingMs, type BrokerConnection, type BrokerSinkOptions, type Outgoing } from './broker-sink';

export interface NatsSinkOptions extends BrokerSinkOptions {
  /** Subject template (`subject`). @default 'registry.events.{action}.{kind}' */
  subject?: string;
  /**
   * The JetStream stream that must store the events (`stream`): a publish another stream
   * (or none) took is refused. Unset: whichever stream captures the subject.
   */
  stream?: string;
  /**
   * Create `stream` on connecting when it does not exist (`createstream`), capturing every
   * subject the template makes (`registry.events.*.*` for the default). @default false
   */
  createStream?: boolean;
}

interface NatsLink extends BrokerConnection {
  nc: NatsConnection;
  js: JetStreamClient;
}

/**
 * Publishes each event to NATS JetStream and waits for the stream's acknowledgement. The
 * `Nats-Msg-Id` header is the event id: JetStream drops a republished event within the
 * stream's duplicate window (2 minutes unless configured), so a retried write stores each
 * event once. URL: `nats://[user:password@ | token@]host[:4222]`.
 */
export class NatsSink extends BrokerSink<NatsLink> {
  private readonly subject: ReturnType<typeof routeTemplate>;
  private readonly subjectTemplate: string;
  private readonly driver: ReturnType<typeof natsDriver>;

  constructor(
    url: string,
    private readonly options: NatsSinkOptions = {},
  ) {
    super(url, 'nats', options);
    this.driver = natsDriver(`the endpoint ${this.url}`);
    this.subjectTemplate = options.subject ?? DEFAULTS.broker.subject;
    this.subject = routeTemplate(this.subjectTemplate, NATS_ROUTES);
  }

  protected async open(deadline: number): Promise<NatsLink> {
    const { nats, jetstream } = this.driver;
    const u = new URL(this.target);
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    const nc = await nats.connect({
      servers: `${u.hostname}:${u.port || 4222}`,
      ...(user && pass ? { user, pass } : user ? { token: user } : {}),
      // Reconnecting is this sink's business: a lost connection fails the write, the
      // retrying sink paces the next one, which connects again.
      reconnect: false,
      timeout: remainingMs(deadline, DEFAULTS.endpoint.timeoutMs),
      name: DEFAULTS.http.userAgent,
    });
    const link: NatsLink = { nc, js: jetstream.jetstream(nc), close: () => nc.close() };
    nc.closed().then(() => this.lost(link), () => this.lost(link));
    if (this.options.createStream && this.options.stream) {
      try {
        await this.ensureStream(link, this.options.stream, jetstream);
      } catch (err) {
        await nc.close().catch(() => undefined);
        throw err;
      }
    }
    return link;
  }

  private async ensureStream(link: NatsLink, name: string, jetstream: ReturnType<typeof natsDriver>['jetstream']): Promise<void> {
    const jsm = await jetstream.jetstreamManager(link.nc);
    try {
      await jsm.streams.info(name);
    } catch (err) {
      if (!(err instanceof jetstream.JetStreamApiError) || err.status !== 404) throw err;
      await jsm.streams.add({ name, subjects: [routePattern(this.subjectTemplate, '*', '>', '.')] });
    }
  }

  protected publish(link: NatsLink, outgoing: readonly Outgoing[], deadline: number): Promise<void>[] {
    const { nats } = this.driver;
    const stream = this.options.stream;
    return outgoing.map(async ({ event, message, properties }) => {
      const h = nats.headers();
      for (const [name, value] of Object.entries(properties)) for (const v of Array.isArray(value) ? value : [value]) h.append(name, v);
      if (message.contentType) h.set('Content-Type', message.contentType);
      const options: Partial<JetStreamPublishOptions> = { msgID: event.id, headers: h, timeout: remainingMs(deadline, 30_000) };
      if (stream) options.expect = { streamName: stream };
      await link.js.publish(this.subject(event), message.body, options);
    });
  }
}
