import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SqliteDeadLetterStore } from '../../lib/stores/sqlite-dead-letters';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { makeEvents } from '../helpers/events';

const run = promisify(execFile);
const TSX = path.resolve(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
const CLI = path.resolve(__dirname, '..', '..', 'lib', 'bin', 'deadletters.ts');

/** Runs the command line as a user would; resolves with its exit code and output. */
async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(TSX, [CLI, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the dead-letters command line', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dlq-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function config(queue: string, endpoints = ['hooks']): string {
    const file = path.join(dir, 'config.yml');
    writeFileSync(
      file,
      ['notifications:', queue, '  endpoints:', ...endpoints.flatMap((n) => [`    - name: ${n}`, '      url: http://127.0.0.1:9/'])].join('\n'),
    );
    return file;
  }

  it('lists the dead letters of a sqlite queue and replays one into the queue', async () => {
    const file = config('  queue:\n    type: sqlite\n    path: n.db');
    const db = path.join(dir, 'n.db');
    const [a, b] = makeEvents(2);
    const dead = new SqliteDeadLetterStore({ path: db, queue: 'hooks' });
    await dead.add([a, b], 'gave up after 3 attempts: POST http://127.0.0.1:9/: connect ECONNREFUSED');
    await dead.close();

    const listed = await cli(['--config', file, 'list'], dir);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual([a.id, b.id]);
    expect(lines[0]).toMatchObject({ action: 'push', repository: 'demo/app', tag: 'v1', reason: expect.stringContaining('ECONNREFUSED') });

    const replayed = await cli(['--config', file, '--endpoint', 'hooks', 'replay', '--id', b.id], dir);
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('replayed 1 event(s) into the queue of endpoint hooks');

    const queue = new SqliteStore({ path: db, queue: 'hooks' });
    const taken = await queue.take(10, new AbortController().signal, 0);
    await queue.close();
    expect(taken.map((t) => t.event.id)).toEqual([b.id]);
    const left = await cli(['--config', file, 'list'], dir);
    expect(left.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual([a.id]);
  });

  it.each<[string, string[], string, RegExp]>([
    ['no command', [], '  queue:\n    type: sqlite\n    path: n.db', /expected the command list or replay, got nothing/],
    ['an unknown command', ['purge'], '  queue:\n    type: sqlite\n    path: n.db', /got "purge"/],
    ['an endpoint that does not exist', ['--endpoint', 'x', 'list'], '  queue:\n    type: sqlite\n    path: n.db', /no endpoint named "x"; endpoints: hooks/],
    ['a memory queue', ['list'], '  queue:\n    type: memory', /dead letters live inside the registry process/],
    ['a bad configuration', ['list'], '  queue:\n    type: kafka', /notifications.queue.type: expected memory, sqlite or redis/],
  ])('exits 2 with a clear message for %s', async (_case, args, queue, message) => {
    const file = config(queue);
    const result = await cli(['--config', file, ...args], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('exits 1 naming the store when it cannot be opened', async () => {
    writeFileSync(path.join(dir, 'n.db'), 'this is not a database, just some text that fills a page '.repeat(100));
    const result = await cli(['--config', config('  queue:\n    type: sqlite\n    path: n.db'), 'list'], dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/sqlite store at .*n\.db: file is not a database/);
  });
});
