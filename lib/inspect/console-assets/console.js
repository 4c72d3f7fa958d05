// The operator's console of registry-notifications: draws the endpoints, attempts and
// events from the console's JSON API, stays current through its Server-Sent Events
// stream, and sends the operator's actions as JSON. Plain browser JavaScript, loaded by
// the page that lib/inspect/console-page.ts serves. Every value from the server is put
// on the page as text (textContent), never as markup.
(function () {
  'use strict';

  const base = document.body.dataset.base;
  const api = base + '/api';
  const $ = (id) => document.getElementById(id);

  /** The console's state: what is selected and how far each list has been paged. */
  const state = {
    endpoints: new Map(), // name -> { data, card, charts }
    selected: null, // endpoint shown in the detail section
    selectedSignature: '', // its counters when its events were last fetched
    attemptsNext: null,
    eventsNext: null,
    eventsPaged: false, // the operator loaded older events: live refreshes leave the list alone
    searchQuery: null,
    searchNext: null,
    eventId: null,
  };
  /** Attempt rows kept in the detail table; older ones are dropped from the page. */
  const MAX_ATTEMPT_ROWS = 500;

  // ---- requests --------------------------------------------------------------------

  /** GET or POST JSON; rejects with the server's `error` message when it refuses. */
  async function request(path, body) {
    const init = { headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(api + path, init);
    let json = null;
    try {
      json = await res.json();
    } catch {
      // A body that is not JSON: the status says enough.
    }
    if (!res.ok) throw new Error((json && json.error) || `${res.status} ${res.statusText}`);
    return json;
  }

  const endpointPath = (name) => '/endpoints/' + encodeURIComponent(name);

  function notice(text, kind) {
    const el = $('notice');
    el.textContent = text;
    el.dataset.kind = kind || 'ok';
    el.hidden = false;
  }

  /** Runs an action from `button`, disabled meanwhile; reports its outcome in the notice line. */
  async function act(button, run) {
    button.disabled = true;
    try {
      const message = await run();
      if (message) notice(message, 'ok');
    } catch (err) {
      notice(err.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  /** Asks before a bulk action; resolves true when the operator confirms. */
  function confirmAction(message, okLabel) {
    const dialog = $('confirm');
    $('confirm-message').textContent = message;
    $('confirm-ok').textContent = okLabel;
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
  }

  // ---- formatting ------------------------------------------------------------------

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    return node;
  }

  function formatAge(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 10) return seconds.toFixed(1) + ' s';
    if (seconds < 120) return Math.round(seconds) + ' s';
    if (seconds < 7200) return Math.round(seconds / 60) + ' min';
    if (seconds < 172800) return Math.round(seconds / 3600) + ' h';
    return Math.round(seconds / 86400) + ' d';
  }

  function formatTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
  }

  const formatMs = (ms) => (ms === null || ms === undefined ? '—' : ms < 10 ? ms.toFixed(1) + ' ms' : Math.round(ms) + ' ms');

  /** What an endpoint answered: the status, or the error when nothing came back. */
  function answerOf(attempt) {
    if (attempt.status !== null && attempt.status !== undefined) return String(attempt.status);
    return attempt.error || '—';
  }

  function targetOf(event) {
    let text = event.repository || '';
    if (event.tag) text += ':' + event.tag;
    else if (event.digest) text += '@' + event.digest.slice(0, 19) + '…';
    return text || '—';
  }

  /** A link that opens the event view of `id`. */
  function eventLink(id) {
    // Event ids begin with their time, so their ends tell them apart.
    const a = el('a', id.length > 12 ? '…' + id.slice(-8) : id, { href: '#event=' + encodeURIComponent(id), title: id, 'data-event-link': id });
    return a;
  }

  /** Successes over attempts in the recent buckets, as a percentage; null without attempts. */
  function successRate(recent) {
    let ok = 0;
    let all = 0;
    for (const b of recent || []) {
      ok += b.successes;
      all += b.successes + b.failures + b.errors;
    }
    return all === 0 ? null : (100 * ok) / all;
  }

  // ---- endpoints -------------------------------------------------------------------

  function field(card, name) {
    return card.querySelector(`[data-field="${name}"]`);
  }

  function createCard(data) {
    const card = $('endpoint-template').content.firstElementChild.cloneNode(true);
    card.dataset.endpoint = data.name;
    field(card, 'name').textContent = data.name;
    const name = data.name;
    card.querySelector('[data-action="show"]').addEventListener('click', () => selectEndpoint(name));
    card.querySelector('[data-action="pause"]').addEventListener('click', (e) =>
      act(e.currentTarget, async () => {
        const r = await request(endpointPath(name) + '/pause', {});
        return `${name}: ${r.state}`;
      }),
    );
    card.querySelector('[data-action="resume"]').addEventListener('click', (e) =>
      act(e.currentTarget, async () => {
        const r = await request(endpointPath(name) + '/resume', {});
        return `${name}: resumed, ${r.state}`;
      }),
    );
    card.querySelector('[data-action="test"]').addEventListener('click', (e) =>
      act(e.currentTarget, async () => {
        const action = field(card, 'test-action').value;
        const r = await request(endpointPath(name) + '/test', { action });
        const a = r.attempt || {};
        const answer = answerOf(a);
        const response = a.response ? `: ${a.response}` : '';
        return `${name}: test ${action} event ${r.ok ? 'accepted' : 'refused'} (${answer}, ${formatMs(a.latencyMs)})${response}`;
      }),
    );
    card.querySelector('[data-action="replay-dead-letters"]').addEventListener('click', async (e) => {
      const button = e.currentTarget;
      const count = state.endpoints.get(name)?.data.deadLetters ?? 0;
      if (!(await confirmAction(`Replay all ${count} dead letters of ${name}? They are queued again and delivered in order.`, 'Replay dead letters'))) return;
      await act(button, async () => {
        const r = await request(endpointPath(name) + '/replay', { deadLetters: true });
        return `${name}: replayed ${r.replayed} dead letter${r.replayed === 1 ? '' : 's'}`;
      });
    });
    card.querySelector('[data-action="replay-range"]').addEventListener('click', async (e) => {
      const button = e.currentTarget;
      const fromValue = field(card, 'from').value;
      const toValue = field(card, 'to').value;
      if (!fromValue) {
        notice(`${name}: choose the start of the range to replay`, 'error');
        return;
      }
      const from = new Date(fromValue);
      const to = toValue ? new Date(toValue) : new Date();
      if (!(from < to)) {
        notice(`${name}: the range must start before it ends`, 'error');
        return;
      }
      if (!(await confirmAction(`Replay every event of ${name} from ${from.toLocaleString()} to ${to.toLocaleString()}? The endpoint receives them again.`, 'Replay range'))) return;
      await act(button, async () => {
        const r = await request(endpointPath(name) + '/replay', { from: from.toISOString(), to: to.toISOString() });
        return `${name}: replayed ${r.replayed} event${r.replayed === 1 ? '' : 's'} from the range`;
      });
    });
    return card;
  }

  /** Two small uPlot charts per endpoint; none when the library did not load. */
  function createCharts(card) {
    if (typeof window.uPlot !== 'function') return null;
    const size = (node) => ({ width: Math.max(200, node.clientWidth || 260), height: 90 });
    const axes = [
      { size: 22, font: '10px system-ui, sans-serif', ticks: { size: 3 }, grid: { width: 0.5 } },
      { size: 36, font: '10px system-ui, sans-serif', ticks: { size: 3 }, grid: { width: 0.5 } },
    ];
    const common = { legend: { show: false }, cursor: { show: true, drag: { x: false, y: false } }, axes };
    const rateNode = card.querySelector('[data-chart="rate"]');
    const latencyNode = card.querySelector('[data-chart="latency"]');
    const rate = new window.uPlot(
      {
        ...common,
        ...size(rateNode),
        scales: { x: { time: true }, y: { range: [0, 100] } },
        // Points too: a slice with attempts between two quiet ones has no line to draw.
        series: [{}, { label: 'success %', stroke: '#1a7f37', width: 1.5, fill: 'rgba(26,127,55,0.12)', spanGaps: false, points: { show: true, size: 4 } }],
      },
      [[], []],
      rateNode,
    );
    const latency = new window.uPlot(
      {
        ...common,
        ...size(latencyNode),
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max || 0)] } },
        series: [
          {},
          { label: 'p50 ms', stroke: '#3367d6', width: 1.5, points: { show: true, size: 4 } },
          { label: 'p95 ms', stroke: '#b35900', width: 1, dash: [4, 3], points: { show: true, size: 3 } },
        ],
      },
      [[], [], []],
      latencyNode,
    );
    // The charts follow their boxes' width as the window or the grid changes.
    if (typeof ResizeObserver === 'function') {
      const observer = new ResizeObserver(() => {
        rate.setSize(size(rateNode));
        latency.setSize(size(latencyNode));
      });
      observer.observe(card);
      return { rate, latency, observer };
    }
    return { rate, latency };
  }

  function updateCharts(charts, recent) {
    if (!charts) return;
    const t = [];
    const rate = [];
    const p50 = [];
    const p95 = [];
    for (const b of recent || []) {
      const all = b.successes + b.failures + b.errors;
      t.push(b.t);
      rate.push(all === 0 ? null : (100 * b.successes) / all);
      p50.push(b.p50Ms ?? null);
      p95.push(b.p95Ms ?? null);
    }
    charts.rate.setData([t, rate]);
    charts.latency.setData([t, p50, p95]);
  }

  function renderEndpoint(data) {
    let entry = state.endpoints.get(data.name);
    if (!entry) {
      const card = createCard(data);
      $('endpoint-list').append(card);
      entry = { data, card, charts: createCharts(card) };
      state.endpoints.set(data.name, entry);
    }
    entry.data = data;
    const { card } = entry;
    card.dataset.state = data.state;
    field(card, 'state').textContent = data.state;
    field(card, 'url').textContent = data.url;
    const headers = Object.entries(data.headers || {}).map(([k, v]) => `${k}: ${[].concat(v).join(', ')}`);
    field(card, 'headers').textContent = headers.join(' · ');
    field(card, 'headers').hidden = headers.length === 0;
    const control = field(card, 'control');
    if (data.control) {
      const since = data.control.since ? ` since ${formatTime(data.control.since)}` : '';
      const reason = data.control.reason ? `: ${data.control.reason}` : '';
      control.textContent = `${data.control.state}${since}${reason}`;
      control.hidden = false;
    } else {
      control.hidden = true;
    }
    field(card, 'pending').textContent = String(data.pending);
    field(card, 'oldest').textContent = formatAge(data.oldestPendingAgeSeconds);
    const rate = successRate(data.recent);
    field(card, 'rate').textContent = rate === null ? '—' : rate.toFixed(rate === 100 || rate === 0 ? 0 : 1) + ' %';
    // Null when the dead-letter store could not be read just now.
    field(card, 'dead-letters').textContent = data.deadLetters === null ? '—' : String(data.deadLetters);
    card.dataset.deadLetters = data.deadLetters === null ? '' : String(data.deadLetters);
    const c = data.counters || {};
    field(card, 'events').textContent = String(c.Events ?? '—');
    field(card, 'failures').textContent = `${c.Failures ?? '—'} / ${c.Errors ?? '—'}`;
    card.querySelector('[data-action="pause"]').hidden = data.state === 'paused';
    card.querySelector('[data-action="resume"]').hidden = !data.control && data.state !== 'paused';
    card.querySelector('[data-action="replay-dead-letters"]').disabled = data.deadLetters === 0;
    updateCharts(entry.charts, data.recent);
  }

  /** Where the attempt and event logs live, and what they lost while their store was slow or down. */
  function renderLog(log) {
    const info = $('log-info');
    if (!log) return;
    info.textContent = `Logs in ${log.store}` + (log.dropped ? `; ${log.dropped} entries dropped while the log store was slow or down` : '') + '.';
    info.dataset.dropped = String(log.dropped || 0);
    info.hidden = false;
  }

  function renderEndpoints(list) {
    const names = new Set(list.map((e) => e.name));
    for (const [name, entry] of state.endpoints) {
      if (!names.has(name)) {
        entry.card.remove();
        if (entry.charts) {
          entry.charts.observer?.disconnect();
          entry.charts.rate.destroy();
          entry.charts.latency.destroy();
        }
        state.endpoints.delete(name);
      }
    }
    for (const data of list) renderEndpoint(data);
    $('no-endpoints').hidden = list.length > 0;
    syncSearchEndpoints(list);
    refreshSelectedEvents();
  }

  /** Keeps the search form's endpoint choices in step with the configured endpoints. */
  function syncSearchEndpoints(list) {
    const select = $('search-form').elements.endpoint;
    const have = Array.from(select.options).slice(1).map((o) => o.value);
    const want = list.map((e) => e.name);
    if (have.join('\n') === want.join('\n')) return;
    const chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const name of want) select.append(el('option', name, { value: name }));
    select.value = want.includes(chosen) ? chosen : '';
  }

  // ---- attempts --------------------------------------------------------------------

  function attemptRow(a) {
    const tr = el('tr', null, { 'data-attempt-id': a.id, 'data-status': a.status ?? 'error', 'data-test': a.test ? 'true' : null });
    const ok = a.status !== null && a.status !== undefined && a.status >= 200 && a.status < 300;
    tr.className = ok ? 'ok' : 'failed';
    tr.append(el('td', formatTime(a.time), { title: a.time }));
    tr.append(el('td', a.attempt));
    const events = el('td');
    if (a.test) events.append(el('span', 'test', { class: 'badge' }), ' ');
    (a.eventIds || []).forEach((id, i) => {
      if (i > 0) events.append(' ');
      events.append(eventLink(id));
    });
    tr.append(events);
    const answer = el('td', answerOf(a), { class: 'answer' });
    if (a.error && a.status !== null && a.status !== undefined) answer.title = a.error;
    tr.append(answer);
    tr.append(el('td', formatMs(a.latencyMs), { class: 'num' }));
    tr.append(el('td', a.response ?? '', { class: 'response' }));
    return tr;
  }

  /** Orders attempt ids, which sort by time: decimal numbers by value, anything else as text. */
  function compareIds(x, y) {
    if (/^\d+$/.test(x) && /^\d+$/.test(y) && x.length !== y.length) return x.length - y.length;
    return x < y ? -1 : x > y ? 1 : 0;
  }

  /** Puts an attempt into `tbody` in id order (newest first), once. */
  function insertAttempt(tbody, a) {
    if (tbody.querySelector(`tr[data-attempt-id="${CSS.escape(a.id)}"]`)) return;
    const row = attemptRow(a);
    const after = Array.from(tbody.rows).find((r) => compareIds(r.dataset.attemptId, a.id) < 0);
    tbody.insertBefore(row, after || null);
  }

  async function loadAttempts(more) {
    const name = state.selected;
    const query = new URLSearchParams({ limit: '50' });
    if (more && state.attemptsNext) query.set('cursor', state.attemptsNext);
    const r = await request(endpointPath(name) + '/attempts?' + query);
    if (state.selected !== name) return;
    // Rows the stream brought meanwhile stay: insertAttempt keeps the order and drops repeats.
    const tbody = $('attempts').tBodies[0];
    for (const a of r.attempts) insertAttempt(tbody, a);
    // A refresh of the newest page keeps the cursor of older pages the operator opened.
    if (more || tbody.rows.length <= r.attempts.length) state.attemptsNext = r.next;
    $('attempts-more').hidden = !state.attemptsNext;
    $('attempts-empty').hidden = tbody.rows.length > 0;
  }

  /** An attempt from the stream: on the endpoint's card, and in the log when it is shown. */
  function onAttempt(a) {
    const entry = state.endpoints.get(a.endpoint);
    if (entry) {
      const last = field(entry.card, 'last-attempt');
      last.textContent = `last attempt ${formatTime(a.time)}: ${answerOf(a)}${a.response ? ' — ' + a.response : ''}`;
      last.dataset.status = a.status ?? 'error';
      last.hidden = false;
    }
    if (state.eventId && (a.eventIds || []).includes(state.eventId)) {
      showEvent(state.eventId, false).catch((err) => notice(err.message, 'error'));
    }
    if (a.endpoint !== state.selected) return;
    const tbody = $('attempts').tBodies[0];
    insertAttempt(tbody, a);
    $('attempts-empty').hidden = true;
    while (tbody.rows.length > MAX_ATTEMPT_ROWS) {
      tbody.deleteRow(-1);
      // The cursor no longer continues the rows shown; older ones come back with a reload of the log.
      state.attemptsNext = null;
      $('attempts-more').hidden = true;
    }
  }

  // ---- events ----------------------------------------------------------------------

  function eventRow(e, withEndpoint) {
    const tr = el('tr', null, { 'data-event-id': e.id, 'data-state': e.state, 'data-endpoint': e.endpoint });
    const time = el('td');
    time.append(eventLink(e.id), el('br'), el('small', formatTime(e.timestamp), { title: e.timestamp }));
    tr.append(time);
    tr.append(el('td', e.action));
    tr.append(el('td', targetOf(e), { title: [e.repository, e.tag, e.digest, e.mediaType].filter(Boolean).join('\n') }));
    if (withEndpoint) tr.append(el('td', e.endpoint));
    tr.append(el('td', e.state, { class: 'event-state' }));
    tr.append(el('td', e.attempts, { class: 'num' }));
    return tr;
  }

  let eventsInFlight = false;
  async function loadEndpointEvents(more) {
    const name = state.selected;
    const query = new URLSearchParams({ endpoint: name, limit: '50' });
    if (more && state.eventsNext) query.set('cursor', state.eventsNext);
    eventsInFlight = true;
    try {
      const r = await request('/events?' + query);
      if (state.selected !== name) return;
      const tbody = $('endpoint-events').tBodies[0];
      const rows = r.events.map((e) => eventRow(e, false));
      if (more) tbody.append(...rows);
      else tbody.replaceChildren(...rows);
      state.eventsNext = r.next;
      $('endpoint-events-more').hidden = !r.next;
      $('endpoint-events-empty').hidden = tbody.rows.length > 0;
    } finally {
      eventsInFlight = false;
    }
  }

  /** Refetches the shown endpoint's first page of events when its counters moved. */
  function refreshSelectedEvents() {
    if (!state.selected || eventsInFlight || state.eventsPaged) return;
    const entry = state.endpoints.get(state.selected);
    if (!entry) return;
    const c = entry.data.counters || {};
    const signature = [c.Events, c.Successes, c.Failures, c.Errors, c.DeadLettered, c.Dropped, entry.data.pending, entry.data.deadLetters].join(',');
    if (signature === state.selectedSignature) return;
    state.selectedSignature = signature;
    // The stream carries this process's attempts only; other replicas' come with this fetch.
    Promise.all([loadAttempts(false), loadEndpointEvents(false)]).catch((err) => notice(err.message, 'error'));
  }

  function selectEndpoint(name) {
    if (state.selected === name) $('endpoint-detail').scrollIntoView({ block: 'start' });
    else setHash({ endpoint: name });
  }

  function showEndpoint(name) {
    if (state.selected === name) return;
    state.selected = name;
    const section = $('endpoint-detail');
    if (!name) {
      section.hidden = true;
      return;
    }
    $('detail-name').textContent = name;
    section.dataset.endpoint = name;
    section.hidden = false;
    $('attempts').tBodies[0].replaceChildren();
    $('endpoint-events').tBodies[0].replaceChildren();
    state.attemptsNext = null;
    state.eventsNext = null;
    state.eventsPaged = false;
    state.selectedSignature = '';
    Promise.all([loadAttempts(false), loadEndpointEvents(false)]).catch((err) => notice(err.message, 'error'));
    section.scrollIntoView({ block: 'start' });
  }

  // ---- search ----------------------------------------------------------------------

  async function search(more) {
    const query = new URLSearchParams(state.searchQuery || '');
    query.set('limit', '50');
    if (more && state.searchNext) query.set('cursor', state.searchNext);
    const r = await request('/events?' + query);
    const table = $('search-results');
    const rows = r.events.map((e) => eventRow(e, true));
    if (more) table.tBodies[0].append(...rows);
    else table.tBodies[0].replaceChildren(...rows);
    table.hidden = table.tBodies[0].rows.length === 0;
    $('search-empty').hidden = !table.hidden;
    state.searchNext = r.next;
    $('search-more').hidden = !r.next;
  }

  // ---- one event -------------------------------------------------------------------

  /** Shows event `id` and its deliveries; `scroll` brings the section into view. */
  async function showEvent(id, scroll) {
    state.eventId = id;
    const section = $('event-view');
    if (!id) {
      section.hidden = true;
      return;
    }
    const r = await request('/events/' + encodeURIComponent(id));
    if (state.eventId !== id) return;
    $('event-id').textContent = id;
    section.dataset.eventId = id;
    $('event-json').textContent = JSON.stringify(r.event, null, 2);
    const deliveries = $('event-deliveries');
    deliveries.replaceChildren();
    if (!r.deliveries.length) deliveries.append(el('p', 'No endpoint took this event.', { class: 'empty' }));
    for (const d of r.deliveries) {
      const box = el('div', null, { class: 'delivery', 'data-endpoint': d.endpoint, 'data-state': d.state });
      const head = el('h3');
      head.append(el('span', d.endpoint), ' ', el('span', d.state, { class: 'event-state' }), ' ');
      const replay = el('button', `Replay to ${d.endpoint}`, { type: 'button', 'data-action': 'replay-event' });
      replay.addEventListener('click', () =>
        act(replay, async () => {
          const res = await request(endpointPath(d.endpoint) + '/replay', { ids: [id] });
          const missing = res.missing && res.missing.length ? `; not found: ${res.missing.join(', ')}` : '';
          return `${d.endpoint}: replayed ${res.replayed} event${res.replayed === 1 ? '' : 's'}${missing}`;
        }),
      );
      head.append(replay);
      box.append(head);
      if (d.attempts && d.attempts.length) {
        const table = el('table', null, { class: 'log' });
        const headRow = el('tr');
        for (const h of ['time', '#', 'events', 'answer', 'latency', 'response']) headRow.append(el('th', h));
        table.append(el('thead'), el('tbody'));
        table.tHead.append(headRow);
        for (const a of d.attempts) insertAttempt(table.tBodies[0], a);
        box.append(table);
      } else {
        box.append(el('p', 'No attempts yet.', { class: 'empty' }));
      }
      deliveries.append(box);
    }
    section.hidden = false;
    if (scroll) section.scrollIntoView({ block: 'start' });
  }

  // ---- navigation: #endpoint=NAME&event=ID -----------------------------------------

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    return { endpoint: params.get('endpoint'), event: params.get('event') };
  }

  function setHash(change) {
    const now = { ...readHash(), ...change };
    const params = new URLSearchParams();
    if (now.endpoint) params.set('endpoint', now.endpoint);
    if (now.event) params.set('event', now.event);
    const hash = params.toString();
    if (hash === location.hash.slice(1)) applyHash();
    else location.hash = hash;
  }

  function applyHash() {
    const { endpoint, event } = readHash();
    showEndpoint(endpoint);
    if (event !== state.eventId) showEvent(event, true).catch((err) => notice(`event ${event}: ${err.message}`, 'error'));
  }

  // ---- live updates ----------------------------------------------------------------

  function connect() {
    const live = $('live');
    const source = new EventSource(api + '/stream');
    source.addEventListener('open', () => {
      live.dataset.live = 'open';
      live.textContent = 'live';
    });
    source.addEventListener('error', () => {
      // EventSource reconnects by itself; the page says so meanwhile.
      live.dataset.live = source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
      live.textContent = source.readyState === EventSource.CLOSED ? 'disconnected: reload the page' : 'reconnecting…';
    });
    source.addEventListener('endpoints', (m) => {
      const snapshot = JSON.parse(m.data);
      renderEndpoints(snapshot.endpoints);
      renderLog(snapshot.log);
    });
    source.addEventListener('attempt', (m) => onAttempt(JSON.parse(m.data)));
  }

  // ---- wiring ----------------------------------------------------------------------

  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    for (const [k, v] of new FormData(e.currentTarget)) if (String(v).trim()) query.set(k, String(v).trim());
    state.searchQuery = query.toString();
    state.searchNext = null;
    search(false).catch((err) => notice(err.message, 'error'));
  });
  $('search-more').addEventListener('click', (e) => act(e.currentTarget, () => search(true)));
  $('attempts-more').addEventListener('click', (e) => act(e.currentTarget, () => loadAttempts(true)));
  $('endpoint-events-more').addEventListener('click', (e) => {
    state.eventsPaged = true;
    act(e.currentTarget, () => loadEndpointEvents(true));
  });
  // Event links keep the endpoint shown beside the event; their href still opens a new tab.
  document.addEventListener('click', (e) => {
    const link = e.target instanceof Element ? e.target.closest('a[data-event-link]') : null;
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    setHash({ event: link.dataset.eventLink });
  });
  $('notice').addEventListener('click', (e) => (e.currentTarget.hidden = true));
  $('detail-close').addEventListener('click', () => setHash({ endpoint: null }));
  $('event-close').addEventListener('click', () => setHash({ event: null }));
  window.addEventListener('hashchange', applyHash);

  request('/endpoints')
    .then((r) => {
      renderEndpoints(r.endpoints);
      renderLog(r.log);
    })
    .catch((err) => notice(err.message, 'error'))
    .finally(() => {
      applyHash();
      connect();
    });
})();
