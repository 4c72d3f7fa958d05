// Appends events one at a time to a SqliteStore, printing each id once append has resolved,
// until it is killed. sqlite-store.test.ts runs it and kills it with SIGKILL.
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvent } from '../helpers/events';

const [path, queue] = process.argv.slice(2);
const store = new SqliteStore({ path, queue });

void (async () => {
  for (;;) {
    const event = makeEvent();
    await store.append([event]);
    process.stdout.write(`${event.id}\n`);
    // Yield so stdout is flushed and the parent can act while we keep going.
    await new Promise((r) => setImmediate(r));
  }
})();
