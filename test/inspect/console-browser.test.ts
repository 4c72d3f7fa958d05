import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createNotifications, createStatsRouter, type Notifications } from '../../lib';
import { makeEvent } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';

// The console in a real browser: Debian's headless Chromium drives the page served by
// createStatsRouter, against a real pipeline delivering to a real HTTP receiver.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');
/** Longest wait for something to show on the page; generous, as delivery runs on timers. */
const SHOWS_WITHIN_MS = 20_000;
const DOWN = 'scanner is down for maintenance';

describe('the operator console in headless Chromium', () => {
  let browser: Browser;
  let receiver: TestReceiver;
  let notifications: Notifications;
  let server: http.Server;
  let page: Page;
  /** Console errors and uncaught exceptions of the page, CSP violations among them. */
  let pageErrors: string[];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing at ${CHROMIUM}: the console's browser test needs it. ` +
          'Install it with `apt-get install -y chromium` (Debian), or set CHROMIUM_PATH to a Chromium binary.',
      );
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    receiver = await new TestReceiver().start();
    notifications = createNotifications(
      {
        endpoints: [
          // Gives up after three attempts, a few milliseconds apart: failures reach the dead letters at once.
          {
            name: 'scanner',
            url: receiver.url.replace('http://', 'http://ops:s3cret@'),
            headers: { 'X-Auth-Token': ['t0ken'] },
            maxretries: 2,
            threshold: 1,
            backoff: '10ms',
            maxbackoff: '20ms',
          },
        ],
      },
      { onError: () => undefined },
    );
    await notifications.ready();
    server = await new Promise<http.Server>((resolve) => {
      const s = express().use(createStatsRouter(notifications)).listen(0, '127.0.0.1', () => resolve(s));
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(SHOWS_WITHIN_MS);
    pageErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
  });

  afterEach(async () => {
    await page?.close();
    if (server) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await notifications?.close();
    await receiver?.stop();
  });

  const consoleUrl = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/debug/notifications`;
  const card = 'article.endpoint[data-endpoint="scanner"]';

  /** Saves what the page shows, for a person to look at after the run. */
  async function screenshot(name: string) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
  }

  it('shows failing attempts live, pauses and resumes, and replays dead letters once the endpoint is fixed', async () => {
    receiver.respond = () => ({ status: 500, body: DOWN });
    try {
      await page.goto(consoleUrl() + '#endpoint=scanner');
      await page.locator('#live[data-live="open"]').waitFor();
      await page.locator(`${card}[data-state="closed"]`).waitFor();
      await page.locator('#endpoint-detail[data-endpoint="scanner"]').waitFor();
      // Credentials shown redacted, as the API gives them.
      const api = (await (await fetch(consoleUrl() + '/api/endpoints')).json()) as { endpoints: Array<{ url: string }> };
      const shownUrl = await page.locator(`${card} [data-field="url"]`).textContent();
      expect(shownUrl).toBe(api.endpoints[0].url);
      expect(await page.locator(`${card} [data-field="headers"]`).textContent()).toBe('X-Auth-Token: <redacted>');
      expect(await page.locator(card).textContent()).not.toMatch(/s3cret|t0ken/);
      // Marks this document: were the page reloaded, the mark would be gone.
      await page.evaluate(() => ((globalThis as unknown as { consoleTestMark: boolean }).consoleTestMark = true));

      // Events written after the page loaded: their attempts can only arrive through the stream.
      const events = [makeEvent('push'), makeEvent('push')];
      await notifications.endpoint('scanner').write(events);
      const failed = page.locator('#attempts tr[data-status="500"]', { hasText: DOWN });
      await failed.first().waitFor();
      expect(await failed.first().locator('td.answer').textContent()).toBe('500');
      await page.locator(`${card} [data-field="last-attempt"]`, { hasText: DOWN }).waitFor();

      // Three attempts each, then both are dead letters.
      await page.locator(`${card}[data-dead-letters="2"]`).waitFor();
      for (const e of events) await page.locator(`#endpoint-events tr[data-event-id="${e.id}"][data-state="dead-lettered"]`).waitFor();
      expect(await page.locator(`${card} [data-field="dead-letters"]`).textContent()).toBe('2');
      expect(await page.locator(`${card} [data-field="rate"]`).textContent()).toBe('0 %');
      await screenshot('console-failing.png');

      await page.locator(`${card} [data-action="pause"]`).click();
      await page.locator(`${card}[data-state="paused"]`).waitFor();
      expect(await page.locator(`${card} [data-field="state"]`).textContent()).toBe('paused');
      await page.locator(`${card} [data-field="control"]`, { hasText: 'paused' }).waitFor();
      expect(await page.locator(`${card} [data-action="pause"]`).isHidden()).toBe(true);

      await page.locator(`${card} [data-action="resume"]`).click();
      await page.locator(`${card}:not([data-state="paused"])`).waitFor();
      expect(await page.locator(`${card} [data-field="control"]`).isHidden()).toBe(true);

      // The endpoint is fixed; replaying all dead letters asks first.
      receiver.respond = () => 200;
      await page.locator(`${card} [data-action="replay-dead-letters"]`).click();
      const dialog = page.locator('dialog#confirm[open]');
      await dialog.waitFor();
      expect(await dialog.locator('#confirm-message').textContent()).toMatch(/^Replay all 2 dead letters of scanner\?/);
      await dialog.locator('#confirm-ok').click();
      await page.locator('#notice[data-kind="ok"]', { hasText: 'scanner: replayed 2 dead letters' }).waitFor();

      await receiver.until((r) => events.every((e) => r.events.some((got) => got.id === e.id)));
      for (const e of events) await page.locator(`#endpoint-events tr[data-event-id="${e.id}"][data-state="delivered"]`).waitFor();
      await page.locator(`${card}[data-dead-letters="0"]`).waitFor();
      await page.locator('#attempts tr[data-status="200"]').first().waitFor();
      await page.locator(`${card}[data-state="closed"]`).waitFor();
      await page.locator(`${card} [data-field="pending"]`, { hasText: /^0$/ }).waitFor();

      expect(await page.evaluate(() => (globalThis as unknown as { consoleTestMark?: boolean }).consoleTestMark)).toBe(true);
      expect(pageErrors).toEqual([]);
    } finally {
      await screenshot('console.png');
    }
  }, 90_000);

  it('finds an event by search, shows it, replays it alone and by time range, and sends a test event', async () => {
    const event = makeEvent('push');
    await notifications.endpoint('scanner').write([event]);
    await receiver.until((r) => r.events.some((e) => e.id === event.id));
    const received = () => receiver.events.filter((e) => e.id === event.id).length;
    try {
      await page.goto(consoleUrl());
      await page.locator(`${card}[data-state="closed"]`).waitFor();

      await page.locator('#search-form input[name="repository"]').fill(event.target.repository!);
      await page.locator('#search-form select[name="state"]').selectOption('delivered');
      await page.locator('#search-form button[type="submit"]').click();
      const row = page.locator(`#search-results tr[data-event-id="${event.id}"][data-state="delivered"]`);
      await row.waitFor();
      await row.locator('a[data-event-link]').click();

      const view = page.locator(`#event-view[data-event-id="${event.id}"]`);
      await view.waitFor();
      expect(JSON.parse((await page.locator('#event-json').textContent())!)).toMatchObject({
        id: event.id,
        action: 'push',
        target: { repository: event.target.repository, digest: event.target.digest, tag: event.target.tag },
      });
      await view.locator('.delivery[data-endpoint="scanner"][data-state="delivered"] tr[data-status="200"]').first().waitFor();
      await view.locator('.delivery[data-endpoint="scanner"] [data-action="replay-event"]').click();
      await page.locator('#notice[data-kind="ok"]', { hasText: 'scanner: replayed 1 event' }).waitFor();
      await receiver.until(() => received() === 2);

      // A range that holds the event: from an hour ago to now (the empty "to").
      const anHourAgo = await page.evaluate(() => {
        const d = new Date(Date.now() - 3600_000);
        d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); // datetime-local inputs take local time
        return d.toISOString().slice(0, 19);
      });
      await page.locator(`${card} [data-field="from"]`).fill(anHourAgo);
      await page.locator(`${card} [data-action="replay-range"]`).click();
      const dialog = page.locator('dialog#confirm[open]');
      await dialog.waitFor();
      expect(await dialog.locator('#confirm-message').textContent()).toMatch(/^Replay every event of scanner from .+ to .+\?/);
      await dialog.locator('#confirm-ok').click();
      await page.locator('#notice[data-kind="ok"]', { hasText: /^scanner: replayed [1-9]\d* events? from the range$/ }).waitFor();
      await receiver.until(() => received() >= 3);

      await page.locator(`${card} [data-field="test-action"]`).selectOption('delete');
      await page.locator(`${card} [data-action="test"]`).click();
      await page.locator('#notice[data-kind="ok"]', { hasText: /^scanner: test delete event accepted \(200, / }).waitFor();
      expect(pageErrors).toEqual([]);
    } finally {
      await screenshot('console-event.png');
    }
  }, 90_000);

  it('behind a token, works with the browser\'s Basic credentials: page, stream and actions', async () => {
    const guarded = await new Promise<http.Server>((resolve) => {
      const s = express().use(createStatsRouter(notifications, { auth: { token: 'console-secret' } })).listen(0, '127.0.0.1', () => resolve(s));
    });
    const url = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}/debug/notifications`;
    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: 'console-secret' } });
    try {
      expect((await fetch(url)).status).toBe(401);
      const authed = await context.newPage();
      authed.setDefaultTimeout(SHOWS_WITHIN_MS);
      await authed.goto(url);
      await authed.locator('#live[data-live="open"]').waitFor();
      await authed.locator(`${card} [data-action="pause"]`).click();
      await authed.locator(`${card}[data-state="paused"]`).waitFor();
      expect(notifications.endpoint('scanner').control?.state).toBe('paused');
      await authed.locator(`${card} [data-action="resume"]`).click();
      await authed.locator(`${card}[data-state="closed"]`).waitFor();
      expect(notifications.endpoint('scanner').control).toBeUndefined();
    } finally {
      await context.close();
      guarded.closeAllConnections();
      await new Promise((resolve) => guarded.close(resolve));
    }
  }, 60_000);
});
