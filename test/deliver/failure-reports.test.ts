import { Breaker } from '../../lib/deliver/breaker';
import { Endpoint } from '../../lib/deliver/endpoint';
import { RetryingSink } from '../../lib/deliver/retrying-sink';
import type { Sink } from '../../lib/deliver/sink';
import type { Event } from '../../lib/model/event';
import { makeEvents } from '../helpers/events';
import { TestReceiver } from '../helpers/http-receiver';
import { waitFor } from '../helpers/wait';

describe('Retry-After has a ceiling', () => {
  it('a month-long Retry-After waits at most maxRetryAfterMs', async () => {
    let calls = 0;
    const sink: Sink = {
      async write(_events: readonly Event[]) {
        if (calls++ === 0) throw Object.assign(new Error('503 from a proxy in maintenance'), { retryAfterMs: 30 * 24 * 3600 * 1000 });
      },
      async close() {},
    };
    const waits: number[] = [];
    const retrying = new RetryingSink(sink, new Breaker({ threshold: 100 }), { maxRetryAfterMs: 20, onRetry: (_a, _e, waitMs) => waits.push(waitMs) });
    await retrying.write(makeEvents(1));
    expect(waits).toEqual([20]);
    expect(calls).toBe(2);
    await retrying.close();
  });
});

describe('failed attempts are reported, at a rate a person can read', () => {
  let receiver: TestReceiver;
  beforeEach(async () => {
    receiver = await new TestReceiver().start();
  });
  afterEach(() => receiver.stop());

  it('one line per interval, with the status, the URL redacted and a count of the rest', async () => {
    receiver.respond = () => 500;
    const reports: string[] = [];
    const { port } = new URL(receiver.url);
    const endpoint = new Endpoint(
      { name: 'scanner', url: `http://u:secret@127.0.0.1:${port}/hook`, threshold: 1, backoffMs: 5 },
      { onError: (err) => reports.push(err.message), failureLogIntervalMs: 200 },
    );
    await endpoint.write(makeEvents(1));
    await waitFor(() => endpoint.stats.counters.Failures >= 10 && reports.length >= 2, {
      describe: () => `${endpoint.stats.counters.Failures} failures, reports: ${reports.join(' | ')}`,
    });
    await endpoint.close();
    expect(reports.length).toBeLessThan(endpoint.stats.counters.Failures);
    expect(reports[0]).toMatch(/^delivery attempt 1 failed: POST http:\/\/redacted:redacted@127\.0\.0\.1:\d+\/hook: response status 500 Internal Server Error unaccepted; next attempt in \d+ms$/);
    expect(reports[1]).toMatch(/failed: .*500.*; next attempt in \d+ms \(\d+ more failed attempts since the last report\)$/);
    for (const line of reports) expect(line).not.toContain('secret');
  });
});
