// A blob delete and a manifest delete carry the same bare {repository, digest} target in
// Distribution's wire format. The Bridge records which one it was; these tests follow
// that kind through filters, CloudEvents and receivers, and check the Distribution bytes
// stay what Distribution sends.
import express from 'express';
import request from 'supertest';
import { createReceiver, encodeEnvelope, eventType, type Event } from '../../lib';
import { toCloudEvent, decodeStructured, encodeStructured } from '../../lib/codec/cloudevents';
import { Filter } from '../../lib/deliver/filter';
import { Bridge, urlBuilderFor } from '../../lib/emit/bridge';
import { loadFixtures } from '../helpers/fixtures';
import { RecordingSink } from '../helpers/sinks';

const manifestDeleteFixture = loadFixtures().find((f) => f.name === 'manifest-delete')!;
const DIGEST = 'sha256:' + 'a'.repeat(64);

async function deletes(): Promise<{ blob: Event; manifest: Event }> {
  const sink = new RecordingSink();
  const bridge = new Bridge({
    sink,
    urls: urlBuilderFor('http://127.0.0.1:5000'),
    request: { id: 'r', method: 'DELETE', useragent: 'skopeo' },
    actor: {},
    source: {},
  });
  await bridge.blobDeleted('demo/app', DIGEST);
  await bridge.manifestDeleted('demo/app', DIGEST);
  const [blob, manifest] = sink.events;
  return { blob, manifest };
}

describe('a blob delete is reported as a blob delete', () => {
  it('the Bridge records the kind, so the event type is blob.delete', async () => {
    const { blob, manifest } = await deletes();
    expect(eventType(blob)).toBe('blob.delete');
    expect(eventType(manifest)).toBe('manifest.delete');
  });

  it('without changing a byte of the Distribution envelope', async () => {
    const { blob, manifest } = await deletes();
    const same = (e: Event) => ({ ...e, id: 'x', timestamp: '2026-01-01T00:00:00Z' });
    expect(encodeEnvelope([same(blob)])).toBe(encodeEnvelope([{ ...same(manifest), kind: undefined }]));
    expect(encodeEnvelope([blob])).not.toContain('kind');
    // The fixture's own bytes: Distribution's manifest delete, which a blob delete mirrors.
    expect(Object.keys(JSON.parse(manifestDeleteFixture.body).events[0].target)).toEqual(Object.keys(blob.target));
  });

  it('ignore.kinds: [blob] drops blob deletes and lets manifest deletes through', async () => {
    const { blob, manifest } = await deletes();
    const below = new RecordingSink();
    await new Filter(below, { ignore: { kinds: ['blob'] } }).write([blob, manifest]);
    expect(below.events.map(eventType)).toEqual(['manifest.delete']);
  });

  it('the CloudEvents type says blob.delete, and decoding keeps the kind', async () => {
    const { blob } = await deletes();
    expect(toCloudEvent(blob).type).toBe('io.distribution.blob.delete');
    expect(toCloudEvent(blob).data).not.toHaveProperty('kind');
    expect(decodeStructured(encodeStructured(blob).body).kind).toBe('blob');
  });

  it("a receiver's blob.delete handler fires for it, not manifest.delete", async () => {
    const { blob } = await deletes();
    const fired: string[] = [];
    const app = express().use(
      createReceiver({
        on: { 'blob.delete': (e) => void fired.push(`blob ${e.id}`), 'manifest.delete': (e) => void fired.push(`manifest ${e.id}`) },
      }),
    );
    const { headers, body } = encodeStructured(blob);
    await request(app).post('/').set(headers).send(body).expect(200);
    expect(fired).toEqual([`blob ${blob.id}`]);
  });
});
