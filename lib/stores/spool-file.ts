import fs from 'node:fs';
import path from 'node:path';
import { decodeEvent, storedEventJson } from '../codec/envelope';
import type { Event } from '../model/event';

/** One batch of events in a spool file, numbered in the order its append began. */
export interface SpooledBatch {
  seq: number;
  events: Event[];
}

/**
 * The events a store could not take, on local disk until it can: an append-only file of
 * one JSON object a line, `{"seq":N,"events":[…]}` for a batch (on disk when `append`
 * returns) and `{"done":N}` once the store holds batch N. A line cut short by a crash, or
 * otherwise damaged, is reported, copied to `<file>.damaged` and skipped; the other
 * lines still count.
 */
export class SpoolFile {
  private fd?: number;
  private dirty = false;

  constructor(
    readonly file: string,
    private readonly onDamage: (err: Error) => void,
  ) {}

  /**
   * The batches a previous run left and the store does not hold yet, oldest first. The
   * file is rewritten to hold just those, or removed when there are none.
   */
  load(): SpooledBatch[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const lines = text.split('\n');
    const batches = new Map<number, { batch: SpooledBatch; line: string }>();
    const done = new Set<number>();
    lines.forEach((line, i) => {
      if (line === '') return;
      try {
        const value = JSON.parse(line) as { seq?: unknown; events?: unknown; done?: unknown };
        if (typeof value.done === 'number') {
          done.add(value.done);
        } else if (typeof value.seq === 'number' && Array.isArray(value.events)) {
          const events = value.events.map((e, j) => decodeEvent(e, `event ${j}`));
          batches.set(value.seq, { batch: { seq: value.seq, events }, line });
        } else {
          throw new Error('neither a batch nor a done mark');
        }
      } catch (err) {
        // The last line without its newline is a write the process did not finish.
        const torn = i === lines.length - 1;
        fs.appendFileSync(`${this.file}.damaged`, line + '\n');
        this.onDamage(
          new Error(
            `spool ${this.file}: line ${i + 1} is ${torn ? 'incomplete (the process ended while writing it)' : 'damaged'} ` +
              `(${(err as Error).message}); skipped, copied to ${this.file}.damaged`,
          ),
        );
      }
    });
    const pending = [...batches.values()].filter(({ batch }) => !done.has(batch.seq)).sort((a, b) => a.batch.seq - b.batch.seq);
    if (pending.length === 0) {
      fs.rmSync(this.file, { force: true });
    } else {
      // Compact: only what is pending, written aside and renamed over, so a crash here
      // leaves either the old file or the new one.
      const tmp = `${this.file}.tmp`;
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeSync(fd, pending.map(({ line }) => line + '\n').join(''));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      this.syncDirectory();
    }
    return pending.map(({ batch }) => batch);
  }

  /** Adds a batch; it is on disk once `sync()` has returned. */
  append(batch: SpooledBatch): void {
    const line = `{"seq":${batch.seq},"events":[${batch.events.map(storedEventJson).join(',')}]}\n`;
    fs.writeSync(this.open(), line);
    this.dirty = true;
  }

  /** Puts every batch appended so far on disk (one fdatasync for them all). */
  sync(): void {
    if (!this.dirty || this.fd === undefined) return;
    fs.fdatasyncSync(this.fd);
    this.dirty = false;
  }

  /**
   * Marks batches as held by the store. Not synced: a mark lost in a crash only makes
   * the next start send that batch to the store again (at-least-once).
   */
  done(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    fs.writeSync(this.open(), seqs.map((seq) => `{"done":${seq}}\n`).join(''));
  }

  /** Nothing is pending: removes the file. */
  clear(): void {
    this.close();
    fs.rmSync(this.file, { force: true });
  }

  close(): void {
    if (this.fd === undefined) return;
    this.sync();
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd !== undefined) return this.fd;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const created = !fs.existsSync(this.file);
    this.fd = fs.openSync(this.file, 'a');
    // A new file's name must survive a crash as well as its contents.
    if (created) this.syncDirectory();
    return this.fd;
  }

  private syncDirectory(): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.dirname(this.file), 'r');
      fs.fsyncSync(fd);
    } catch {
      // Some platforms cannot sync a directory; the file's own sync still holds.
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}
