// A consumer of one SqliteStore queue, as a registry process runs it: takes events,
// "delivers" each by printing `delivered <id>`, then acknowledges. Run by
// sqlite-lease.test.ts, which starts several on one file and ends them with SIGTERM
// (a clean close, which frees the lease) or SIGKILL.
//
//   node -r tsx/cjs sqlite-consumer-child.ts FILE QUEUE '{"leaseMs":1000,"append":5,...}'
//
// Options: leaseMs, leaseRenewMs, max (events per take), delayMs (between delivering
// and acknowledging), append (events to append at start, printed `appended <id>`),
// pause (a reason: saves the control `paused` at start, then prints `saved`).
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvents } from '../helpers/events';

const [path, queue, json = '{}'] = process.argv.slice(2);
const opts = JSON.parse(json) as {
  leaseMs?: number;
  leaseRenewMs?: number;
  max?: number;
  delayMs?: number;
  append?: number;
  pause?: string;
};
const store = new SqliteStore({ path, queue, pollMs: 20, leaseMs: opts.leaseMs, leaseRenewMs: opts.leaseRenewMs });
const stop = new AbortController();
const print = (line: string) => process.stdout.write(`${line}\n`);

process.on('SIGTERM', () => stop.abort());

void (async () => {
  if (opts.append) {
    const events = makeEvents(opts.append);
    await store.append(events);
    for (const e of events) print(`appended ${e.id}`);
  }
  if (opts.pause !== undefined) {
    await store.saveControl({ state: 'paused', reason: opts.pause, since: new Date().toISOString() });
    print('saved');
  }
  print('open');
  while (!stop.signal.aborted) {
    const batch = await store.take(opts.max ?? 10, stop.signal, 200);
    for (const entry of batch) print(`delivered ${entry.event.id}`);
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    await store.ack(batch);
  }
  await store.close();
  print('closed');
  process.exit(0);
})().catch((err: Error) => {
  process.stderr.write(`consumer: ${err.stack}\n`);
  process.exit(1);
});
