// End to end into the brokers: skopeo pushes an image to the demo registry configured
// with a NATS JetStream, a RabbitMQ and an MQTT endpoint (Distribution's config shape,
// our URL schemes), and each broker's own consumer reads the push events, in order, a
// CloudEvents one among them.
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import amqp, { type ConsumeMessage } from 'amqplib';
import mqtt from 'mqtt';
import { decodeEnvelope, type Event } from '../../lib';
import { decodeBrokerMessage } from '../../lib/codec/cloudevents-bindings';
import { parseRegistryConfig } from '../../demo-registry/config';
import { startRegistry, type RunningRegistry } from '../../demo-registry/main';
import { BROKERS, requireBroker } from '../helpers/brokers';
import { tinyImage, writeOciLayout, type TinyImage } from '../helpers/oci';
import { waitFor } from '../helpers/wait';

const SKOPEO = '/usr/bin/skopeo';
const run = promisify(execFile);

describe('skopeo push into NATS JetStream, RabbitMQ and MQTT endpoints', () => {
  const tag = randomUUID().slice(0, 8);
  const stream = `REGNOTIFY_SKOPEO_${tag}`;
  let dir: string;
  let registry: RunningRegistry | undefined;
  let img: TinyImage;
  const closing: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    if (!existsSync(SKOPEO)) throw new Error(`${SKOPEO} is missing: apt-get install -y skopeo (bash .ci/run does)`);
    await Promise.all([requireBroker('nats'), requireBroker('amqp'), requireBroker('mqtt')]);
    dir = mkdtempSync(path.join(os.tmpdir(), 'skopeo-brokers-'));
    writeFileSync(path.join(dir, 'htpasswd'), execFileSync('/usr/bin/htpasswd', ['-nbB', 'alice', 'pw']));
    img = tinyImage({ layers: [{ 'etc/motd': `brokers ${tag}\n` }] });
    await writeOciLayout(path.join(dir, 'src'), [{ tag: 'v1', image: img }]);
  });

  afterAll(async () => {
    await registry?.close();
    for (const close of closing.reverse()) await close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the push events of a real client to each broker, read by its own consumer', async () => {
    // The consumers first: RabbitMQ keeps what a bound queue receives, MQTT only what a subscriber is there for.
    const model = await amqp.connect(`amqp://guest:guest@127.0.0.1:${BROKERS.amqp.port}`);
    closing.push(() => model.close());
    const channel = await model.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, 'amq.topic', `skopeo-${tag}.#`);
    const amqpMessages: ConsumeMessage[] = [];
    await channel.consume(queue, (m) => m && amqpMessages.push(m), { noAck: true });

    const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${BROKERS.mqtt.port}`, { protocolVersion: 5, reconnectPeriod: 0 });
    closing.push(() => subscriber.endAsync());
    const mqttEvents: Event[] = [];
    subscriber.on('message', (_topic, payload) => mqttEvents.push(...decodeEnvelope(payload).events));
    await subscriber.subscribeAsync(`skopeo-${tag}/#`, { qos: 1 });

    registry = await startRegistry(
      parseRegistryConfig({
        version: '0.1',
        http: { addr: '127.0.0.1:0' },
        auth: { htpasswd: { realm: 'brokers', path: path.join(dir, 'htpasswd') } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'data') } },
        notifications: {
          endpoints: [
            { name: 'jetstream', url: `nats://127.0.0.1:${BROKERS.nats.port}`, stream, createstream: true, subject: `skopeo-${tag}.{action}.{kind}` },
            { name: 'rabbit', url: `amqp://guest:guest@127.0.0.1:${BROKERS.amqp.port}`, routingkey: `skopeo-${tag}.{action}.{kind}`, format: 'cloudevents-binary' },
            { name: 'mosquitto', url: `mqtt://127.0.0.1:${BROKERS.mqtt.port}`, topic: `skopeo-${tag}/{action}/{kind}` },
          ],
        },
      }),
    );
    const host = new URL(registry.url).host;
    await run(SKOPEO, ['--insecure-policy', 'copy', `oci:${path.join(dir, 'src')}:v1`, '--dest-tls-verify=false', '--dest-creds', 'alice:pw', `docker://${host}/demo/app:v1`], {
      env: { ...process.env, HOME: dir },
    });

    // What was pushed: the layer, the config, then the manifest (after its blobs).
    const pushed = [img.layers[0].digest, img.config.digest, img.manifest.digest];
    const pushes = (events: Event[]) => events.filter((e) => e.action === 'push').map((e) => e.target.digest);
    const inOrder = (digests: (string | undefined)[]) => {
      expect(new Set(digests)).toEqual(new Set(pushed));
      expect(digests[digests.length - 1]).toBe(img.manifest.digest);
    };

    await waitFor(() => pushes(mqttEvents).length >= 3);
    inOrder(pushes(mqttEvents));

    const fromRabbit = (m: ConsumeMessage) => decodeBrokerMessage('amqp', { body: m.content, contentType: m.properties.contentType, properties: m.properties.headers ?? {} });
    await waitFor(() => pushes(amqpMessages.map(fromRabbit)).length >= 3);
    const rabbit = amqpMessages.map(fromRabbit);
    inOrder(pushes(rabbit));
    // Binary CloudEvents over AMQP: the attributes ride in the message's headers.
    expect(amqpMessages[0].properties.headers?.cloudEvents_type).toMatch(/^io\.distribution\./);

    const nc = await connect({ servers: `nats://127.0.0.1:${BROKERS.nats.port}` });
    closing.push(async () => {
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    });
    const consumer = await jetstream(nc).consumers.get(stream);
    const stored: Event[] = [];
    await waitFor(async () => {
      const batch = await consumer.fetch({ max_messages: 50, expires: 1000 });
      for await (const m of batch as AsyncIterable<JsMsg>) stored.push(...decodeEnvelope(Buffer.from(m.data)).events);
      return pushes(stored).length >= 3;
    });
    inOrder(pushes(stored));

    const vars = registry.notifications.debugVars();
    for (const name of ['jetstream', 'rabbit', 'mosquitto']) {
      const m = vars.find((v) => v.name === name)!.Metrics;
      expect([name, m.Errors, m.Failures, m.DeadLettered]).toEqual([name, 0, 0, 0]);
      expect(m.Successes).toBeGreaterThanOrEqual(3);
    }
  }, 90_000);
});
