import path from 'node:path';
import express from 'express';
import type { Notifications } from '../notifications';

/** Where the page, its script and its stylesheet live: beside this file, in the sources and in dist/. */
const ASSETS_DIR = path.join(__dirname, 'console-assets');
const PAGE_PATH = '/debug/notifications';

/**
 * The page loads nothing but files of its own origin: no inline script or style, no frames,
 * no forms posted elsewhere. Actions go through fetch() to the console's JSON API.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** The chart library's browser files, served from the installed package so users build nothing. */
const CHART_FILES: Record<string, string> = {
  'uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};

const escapeHtml = (text: unknown) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const setSecurityHeaders = (res: express.Response) => {
  res.set('Content-Security-Policy', CONSOLE_CSP);
  res.set('X-Content-Type-Options', 'nosniff');
  res.set('Referrer-Policy', 'no-referrer');
};

/**
 * The operator's console: `GET /debug/notifications` (the page) and
 * `GET /debug/notifications/assets/*` (its script, stylesheet and the chart library).
 * The page draws everything from the console's JSON API and its Server-Sent Events
 * stream, both served by the stats router; links are built from where the router is
 * mounted, so the console works under any prefix.
 */
export function createConsolePage(notifications: Notifications): express.Router {
  const router = express.Router();

  router.get(PAGE_PATH, (req, res) => {
    setSecurityHeaders(res);
    res.set('Cache-Control', 'no-store');
    res.type('html').send(consoleHtml(notifications, req.baseUrl));
  });

  router.use(`${PAGE_PATH}/assets`, (_req, res, next) => {
    setSecurityHeaders(res);
    res.set('Cache-Control', 'no-cache');
    next();
  });
  router.get(`${PAGE_PATH}/assets/uplot/:file`, (req, res, next) => {
    const file = CHART_FILES[req.params.file];
    if (file === undefined) return next();
    res.sendFile(file);
  });
  router.use(`${PAGE_PATH}/assets`, express.static(ASSETS_DIR, { index: false, redirect: false }));

  return router;
}

/** The page's skeleton; console.js fills it. Only the mount point and the source record are inserted, escaped. */
function consoleHtml(notifications: Notifications, mountedAt: string): string {
  const root = escapeHtml(mountedAt);
  const base = `${root}${PAGE_PATH}`;
  const { addr, instanceID } = notifications.source;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Registry notifications</title>
<link rel="stylesheet" href="${base}/assets/uplot/uPlot.min.css">
<link rel="stylesheet" href="${base}/assets/console.css">
<script src="${base}/assets/uplot/uPlot.iife.min.js" defer></script>
<script src="${base}/assets/console.js" defer></script>
</head>
<body data-base="${base}">
<header class="top">
  <h1>Registry notifications</h1>
  <p class="meta">${addr ? `Source <code>${escapeHtml(addr)}</code>, ` : ''}instance <code>${escapeHtml(instanceID ?? '')}</code>,
  queue <code>${escapeHtml(notifications.config.queue.type)}</code>.
  <span id="live" data-live="connecting">connecting…</span>
  Also as <a href="${root}/debug/vars">JSON</a> and <a href="${root}/metrics">Prometheus metrics</a>.
  <span id="log-info" hidden></span></p>
</header>
<p id="notice" role="status" aria-live="polite" title="click to dismiss" hidden></p>
<main>
<section id="endpoints" aria-labelledby="endpoints-title">
  <h2 id="endpoints-title">Endpoints</h2>
  <p id="no-endpoints" hidden>No endpoints configured.</p>
  <div id="endpoint-list"></div>
  <p class="legend">State: <b>closed</b> delivering · <b>open</b> waiting after failures · <b>half-open</b> sending one probe ·
  <b>paused</b> held by an operator · <b>gone</b> the endpoint answered 410 · <b>stopped</b> closed down.
  Charts: one point per 10 s over the last 10 minutes.</p>
</section>

<section id="endpoint-detail" hidden aria-labelledby="detail-title">
  <h2 id="detail-title">Endpoint <span id="detail-name"></span> <button type="button" id="detail-close" class="quiet">close</button></h2>
  <div class="columns">
    <div>
      <h3>Attempts <small>newest first, live</small></h3>
      <div class="scroll"><table id="attempts" class="log">
        <thead><tr><th>time</th><th>#</th><th>events</th><th>answer</th><th>latency</th><th>response</th></tr></thead>
        <tbody></tbody>
      </table></div>
      <p id="attempts-empty" class="empty" hidden>No attempts yet.</p>
      <button type="button" id="attempts-more" hidden>Older attempts</button>
    </div>
    <div>
      <h3>Events <small>newest first</small></h3>
      <div class="scroll"><table id="endpoint-events" class="log">
        <thead><tr><th>time</th><th>action</th><th>target</th><th>state</th><th>attempts</th></tr></thead>
        <tbody></tbody>
      </table></div>
      <p id="endpoint-events-empty" class="empty" hidden>No events.</p>
      <button type="button" id="endpoint-events-more" hidden>More events</button>
    </div>
  </div>
</section>

<section id="search" aria-labelledby="search-title">
  <h2 id="search-title">Event search</h2>
  <form id="search-form">
    <label>endpoint <select name="endpoint"><option value="">any</option></select></label>
    <label>id <input name="id" size="18" autocomplete="off"></label>
    <label>repository <input name="repository" size="18" autocomplete="off"></label>
    <label>digest <input name="digest" size="18" autocomplete="off"></label>
    <label>tag <input name="tag" size="8" autocomplete="off"></label>
    <label>action <select name="action"><option value="">any</option><option>push</option><option>pull</option><option>mount</option><option>delete</option></select></label>
    <label>state <select name="state"><option value="">any</option><option>pending</option><option>delivered</option><option>dead-lettered</option></select></label>
    <button type="submit">Search</button>
  </form>
  <table id="search-results" class="log" hidden>
    <thead><tr><th>time</th><th>action</th><th>target</th><th>endpoint</th><th>state</th><th>attempts</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="search-empty" class="empty" hidden>No event matches.</p>
  <button type="button" id="search-more" hidden>More results</button>
</section>

<section id="event-view" hidden aria-labelledby="event-title">
  <h2 id="event-title">Event <code id="event-id"></code> <button type="button" id="event-close" class="quiet">close</button></h2>
  <div id="event-deliveries"></div>
  <h3>The event</h3>
  <pre id="event-json"></pre>
</section>
</main>

<dialog id="confirm">
  <form method="dialog">
    <p id="confirm-message"></p>
    <p class="buttons"><button value="cancel" id="confirm-cancel">Cancel</button> <button value="ok" id="confirm-ok">Replay</button></p>
  </form>
</dialog>

<template id="endpoint-template">
  <article class="endpoint">
    <header>
      <h3 class="name" data-field="name"></h3>
      <span class="state" data-field="state"></span>
    </header>
    <p class="url" data-field="url"></p>
    <p class="headers" data-field="headers" hidden></p>
    <p class="control" data-field="control" hidden></p>
    <dl class="figures">
      <div><dt>pending</dt><dd data-field="pending"></dd></div>
      <div><dt>oldest pending</dt><dd data-field="oldest"></dd></div>
      <div><dt>success rate</dt><dd data-field="rate"></dd></div>
      <div><dt>dead letters</dt><dd data-field="dead-letters"></dd></div>
      <div><dt>events</dt><dd data-field="events"></dd></div>
      <div><dt>failures / errors</dt><dd data-field="failures"></dd></div>
    </dl>
    <p class="last" data-field="last-attempt" hidden></p>
    <div class="charts">
      <figure><figcaption>success rate, %</figcaption><div class="chart" data-chart="rate"></div></figure>
      <figure><figcaption>latency, ms (p50, p95)</figcaption><div class="chart" data-chart="latency"></div></figure>
    </div>
    <div class="actions">
      <button type="button" data-action="show">Attempts and events</button>
      <button type="button" data-action="pause">Pause</button>
      <button type="button" data-action="resume">Resume</button>
      <span class="group"><select data-field="test-action" aria-label="test event action">
        <option>push</option><option>pull</option><option>mount</option><option>delete</option></select><button type="button" data-action="test">Send test event</button></span>
      <button type="button" data-action="replay-dead-letters">Replay dead letters…</button>
      <span class="group"><label>from <input type="datetime-local" step="1" data-field="from"></label>
        <label>to <input type="datetime-local" step="1" data-field="to" title="empty: now"></label><button type="button" data-action="replay-range">Replay range…</button></span>
    </div>
  </article>
</template>
</body>
</html>
`;
}
