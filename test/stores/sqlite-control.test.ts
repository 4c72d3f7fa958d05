// The endpoint control (paused, gone) a SqliteStore keeps in its file: per queue, checked
// on the way in and out, and on disk once saveControl resolves, even if the process is
// then killed. The contract cases (save, load, clear, reopen) run in sqlite-store.test.ts.
import Database from 'better-sqlite3';
import { StoreCorruptError, type EndpointControl } from '../../lib/stores/queue-store';
import { SqliteStore } from '../../lib/stores/sqlite-store';
import { Consumer, killConsumers } from './sqlite-consumer';
import { sqliteFiles } from '../helpers/sqlite-files';

const { newFile, open } = sqliteFiles('control', { beforeClose: killConsumers });

const gone: EndpointControl = { state: 'gone', reason: 'HTTP 410 from https://hooks.example/registry', since: '2026-03-04T05:06:07.890Z' };

describe('SqliteStore endpoint control', () => {
  it('keeps the control of each queue of a file apart', async () => {
    const file = newFile();
    const a = open(new SqliteStore({ path: file, queue: 'a' }));
    const b = open(new SqliteStore({ path: file, queue: 'b' }));
    await a.saveControl(gone);
    expect(await b.loadControl()).toBeUndefined();
    await b.saveControl({ ...gone, state: 'paused', reason: 'paused by an operator' });
    await a.saveControl(undefined);
    expect(await a.loadControl()).toBeUndefined();
    expect(await b.loadControl()).toEqual({ ...gone, state: 'paused', reason: 'paused by an operator' });
  });

  it('refuses to save a control that is not one, naming what is wrong', async () => {
    const file = newFile();
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    const save = (c: unknown) => store.saveControl(c as EndpointControl);
    await expect(save({ ...gone, state: 'stopped' })).rejects.toThrow(
      `sqlite:${file}: saveControl: state must be "paused" or "gone", got "stopped"`,
    );
    await expect(save({ state: 'paused', since: gone.since })).rejects.toThrow(
      `sqlite:${file}: saveControl: reason must be a string, got undefined`,
    );
    await expect(save(null)).rejects.toThrow(`sqlite:${file}: saveControl: expected an object or undefined, got null`);
    expect(await store.loadControl()).toBeUndefined();
  });

  it('reports a stored control it cannot read as damage', async () => {
    const file = newFile();
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    const db = new Database(file);
    db.prepare('INSERT INTO queue_control (queue, state, reason, since) VALUES (?, ?, ?, ?)').run('hooks', 'stopped', 'x', gone.since);
    db.close();
    await expect(store.loadControl()).rejects.toThrow(StoreCorruptError);
    await expect(store.loadControl()).rejects.toThrow(/queue_control of queue hooks has state "stopped", expected paused or gone/);
  });

  it('has the control in the file once saveControl resolved, though the process is killed at once', async () => {
    const file = newFile();
    const child = new Consumer(file, { pause: 'paused by an operator, then SIGKILL' });
    await child.until((c) => c.saved, 'the control to be saved');
    expect(await child.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    const store = open(new SqliteStore({ path: file, queue: 'hooks' }));
    expect(await store.loadControl()).toEqual({ state: 'paused', reason: 'paused by an operator, then SIGKILL', since: expect.any(String) });
  });
});
