// SQLite files for store tests: a temporary folder for the suite, a new file name per
// call, and the stores a test opened, closed after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

interface Closable {
  close(): Promise<void>;
}

export interface SqliteFiles {
  /** The suite's folder (valid once its tests run). */
  readonly dir: string;
  /** A path in it no other call returned. */
  newFile(): string;
  /** Keeps `store` to be closed after the running test; returns it. */
  open<T extends Closable>(store: T): T;
}

/**
 * Declares the hooks of a suite of SQLite tests: its folder made before and removed after
 * every test of the file, and the stores `open()` was given closed after each test, once
 * `beforeClose` (ending child processes that use the files, say) is done.
 */
export function sqliteFiles(label: string, options: { beforeClose?: () => Promise<void> } = {}): SqliteFiles {
  let dir = '';
  let files = 0;
  const stores: Closable[] = [];
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), `sqlite-${label}-`));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await options.beforeClose?.();
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  return {
    get dir() {
      return dir;
    },
    newFile: () => path.join(dir, `${label}-${++files}.db`),
    open(store) {
      stores.push(store);
      return store;
    },
  };
}
