import express from 'express';
import request from 'supertest';
import { createNotifications, createStatsRouter, type Notifications } from '../../lib';
import { CONSOLE_CSP } from '../../lib/inspect/console-page';

describe('the console page and its assets', () => {
  let notifications: Notifications;
  let app: express.Express;

  beforeEach(() => {
    notifications = createNotifications(
      { endpoints: [{ name: 'scanner', url: 'http://127.0.0.1:9/hook' }] },
      { sourceAddr: 'registry<1>:5000', instanceId: 'i"d' },
    );
    app = express().use(createStatsRouter(notifications));
  });
  afterEach(() => notifications.close());

  it('serves the page as HTML under a CSP that allows only its own origin, with no inline script or style', async () => {
    const page = await request(app).get('/debug/notifications').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html; charset=utf-8/);
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'self'(;|$)/);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');

    // Every script is a file of the page's own origin; no inline code or style attribute.
    const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => /src="([^"]+)"/.exec(m[1])?.[1])).toEqual([
      '/debug/notifications/assets/uplot/uPlot.iife.min.js',
      '/debug/notifications/assets/console.js',
    ]);
    expect(scripts.map((m) => m[2].trim())).toEqual(['', '']);
    expect(page.text).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    expect(page.text).toContain('href="/debug/notifications/assets/console.css"');
    expect(page.text).toContain('<body data-base="/debug/notifications">');
  });

  it('escapes what it puts on the page', async () => {
    const page = await request(app).get('/debug/notifications').expect(200);
    expect(page.text).toContain('<code>registry&lt;1&gt;:5000</code>');
    expect(page.text).toContain('<code>i&quot;d</code>');
  });

  it('serves its script, stylesheet and the chart library with their content types', async () => {
    const cases: Array<[string, RegExp, string]> = [
      ['/debug/notifications/assets/console.js', /^application\/javascript|^text\/javascript/, 'EventSource'],
      ['/debug/notifications/assets/console.css', /^text\/css/, '.endpoint'],
      ['/debug/notifications/assets/uplot/uPlot.iife.min.js', /^application\/javascript|^text\/javascript/, 'uPlot'],
      ['/debug/notifications/assets/uplot/uPlot.min.css', /^text\/css/, '.uplot'],
    ];
    for (const [url, type, content] of cases) {
      const res = await request(app).get(url).buffer(true).parse((r, done) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => done(null, text));
      });
      expect([url, res.status]).toEqual([url, 200]);
      expect(res.headers['content-type']).toMatch(type);
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(res.body).toContain(content);
    }
  });

  it('never puts server data into the page as markup: the script writes text only', async () => {
    const script = (await request(app).get('/debug/notifications/assets/console.js').expect(200)).text;
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it('answers 404 for files it does not have, without reaching outside the assets folder', async () => {
    await request(app).get('/debug/notifications/assets/nope.js').expect(404);
    await request(app).get('/debug/notifications/assets/uplot/package.json').expect(404);
    await request(app).get('/debug/notifications/assets/..%2Fconsole-page.ts').expect((res) => expect([400, 403, 404]).toContain(res.status));
  });

  it('builds its links from where the router is mounted', async () => {
    const mounted = express().use('/ops', createStatsRouter(notifications));
    const page = await request(mounted).get('/ops/debug/notifications').expect(200);
    expect(page.text).toContain('<body data-base="/ops/debug/notifications">');
    expect(page.text).toContain('src="/ops/debug/notifications/assets/console.js"');
    expect(page.text).toContain('href="/ops/debug/vars"');
    await request(mounted).get('/ops/debug/notifications/assets/console.css').expect(200);
  });
});
