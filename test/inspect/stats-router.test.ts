import express from 'express';
import request from 'supertest';
import { createNotifications, createStatsRouter, type Notifications } from '../../lib';
import { makeEvent } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';

describe('createStatsRouter', () => {
  let receiver: TestReceiver;
  let notifications: Notifications;
  let app: express.Express;
  let errors: string[];

  beforeEach(async () => {
    receiver = await new TestReceiver().start();
    errors = [];
    notifications = createNotifications({
      endpoints: [
        { name: 'flaky', url: receiver.url, maxretries: 0, backoff: '1ms' },
        { name: 'other', url: receiver.url, disabled: false, headers: { Authorization: ['Bearer x'] } },
      ],
    }, { onError: (err, context) => errors.push(`${context}: ${err.message}`) });
    app = express().use(createStatsRouter(notifications));
  });
  afterEach(async () => {
    await notifications.close();
    await receiver.stop();
  });

  /** One event that the endpoint `flaky` refuses and gives up on at once. */
  async function deadLetterOne() {
    receiver.respond = () => 500;
    const event = makeEvent('push');
    await notifications.endpoint('flaky').write([event]);
    await receiver.until((r) => r.requests.length >= 1);
    while (notifications.endpoint('flaky').stats.counters.DeadLettered < 1) await new Promise((r) => setTimeout(r, 2));
    receiver.respond = () => 200;
    return event;
  }

  it('serves /debug/vars in Distribution\'s expvar shape and /metrics for Prometheus', async () => {
    const vars = await request(app).get('/debug/vars').expect(200);
    expect(vars.body.registry.notifications.endpoints.map((e: { name: string }) => e.name)).toEqual(['flaky', 'other']);
    expect(vars.body.registry.notifications.endpoints[1].Headers).toEqual({ Authorization: ['<redacted>'] });
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toContain('registry_notifications_pending{endpoint="flaky"} 0');
  });

  it('lists dead letters and replays them by id, after which they are delivered', async () => {
    const event = await deadLetterOne();
    const listed = await request(app).get('/debug/notifications/deadletters?endpoint=flaky').expect(200);
    expect(listed.body).toMatchObject({ endpoint: 'flaky', count: 1 });
    expect(listed.body.deadLetters[0].event.id).toBe(event.id);
    expect(listed.body.deadLetters[0].reason).toMatch(/500 Internal Server Error/);
    expect(errors).toEqual([expect.stringMatching(/^endpoint flaky: gave up after 1 attempts: POST .* 500 Internal Server Error unaccepted$/)]);

    const before = receiver.events.length;
    const replayed = await request(app).post('/debug/notifications/deadletters/replay?endpoint=flaky').send({ ids: [event.id] }).expect(200);
    expect(replayed.body).toEqual({ endpoint: 'flaky', replayed: 1, ids: [event.id] });
    await receiver.until((r) => r.events.length === before + 1);
    expect(receiver.events[before].id).toBe(event.id);
    expect((await request(app).get('/debug/notifications/deadletters?endpoint=flaky')).body.count).toBe(0);
  });

  it('refuses unclear requests with a JSON error naming what is wrong', async () => {
    expect((await request(app).get('/debug/notifications/deadletters').expect(400)).body.error).toBe('missing ?endpoint=; endpoints: flaky, other');
    expect((await request(app).get('/debug/notifications/deadletters?endpoint=nope').expect(404)).body.error).toBe('no endpoint named "nope"; endpoints: flaky, other');
    expect((await request(app).get('/debug/notifications/deadletters?endpoint=flaky&limit=0').expect(400)).body.error).toMatch(/limit must be a whole number/);
    expect((await request(app).post('/debug/notifications/deadletters/replay?endpoint=flaky').send({ ids: 'x' }).expect(400)).body.error).toMatch(/"ids" must be a list/);
  });

  it('serves the console page, which draws itself from the JSON API (see console-page and console-browser tests)', async () => {
    const page = await request(app).get('/debug/notifications').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toMatch(/<script[^>]+src="[^"]*console\.js"/);
  });
});
