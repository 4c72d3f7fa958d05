// Real damage to a real SQLite file, for the corruption tests: garbage written over whole
// pages behind SQLite's back, found by the page numbers SQLite itself reports.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';

/** The table `touchFromElsewhere` writes to: one of the test's own, so its change needs no page of the store's tables. */
const ELSEWHERE = 'damage_elsewhere';

/** The file header's page size, first freelist trunk page and freelist length. */
export function sqliteHeader(file: string): { pageSize: number; freelistTrunk: number; freePages: number } {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(100);
  try {
    readSync(fd, buf, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  const pageSize = buf.readUInt16BE(16);
  return { pageSize: pageSize === 1 ? 65536 : pageSize, freelistTrunk: buf.readUInt32BE(32), freePages: buf.readUInt32BE(36) };
}

/** The leaf pages of a table or index, in key order (dbstat's path walks the b-tree). */
export function leafPages(file: string, name: string): number[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path").pluck().all(name) as number[];
  } finally {
    db.close();
  }
}

/** Writes garbage over whole pages of the file. */
export function smash(file: string, pages: number[]): void {
  const { pageSize } = sqliteHeader(file);
  const fd = openSync(file, 'r+');
  try {
    for (const page of pages) writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** Creates the table `touchFromElsewhere` needs, before any page is smashed. */
export function prepareTouch(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS ${ELSEWHERE} (n INTEGER)`);
}

/**
 * Commits a change through another connection (to the table `prepareTouch` made), so that
 * a connection that has the file open drops its page cache and reads the smashed pages.
 */
export function touchFromElsewhere(file: string): void {
  const db = new Database(file);
  try {
    db.prepare(`INSERT INTO ${ELSEWHERE} (n) VALUES (?)`).run(Date.now());
  } finally {
    db.close();
  }
}
