// The worker thread of a SqliteDeliveryLog: it owns a connection of its own to the log's
// file and applies the entries the delivery process's main thread hands it, in order.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { DeliveryLogLimits } from './delivery-log';
import { sqliteDriver } from './drivers';
import { SqliteLogWriter, type WriterEntry } from './sqlite-log-writer';

/** What the worker is started with. */
export interface SqliteLogWorkerData {
  path: string;
  busyTimeoutMs: number;
  synchronous: string;
  limits: DeliveryLogLimits;
  /** How much nicer than the process this thread makes itself; 0 leaves it as the process is. */
  nice: number;
}

/** The highest niceness (the lowest priority) Linux gives. */
const NICEST = 19;

/**
 * Makes this thread (only) `by` nicer than it is, up to 19, where the system says which
 * thread this is (Linux's `/proc/thread-self`, `<pid>/task/<tid>`): there a thread id given
 * to `setpriority` names that thread alone. Elsewhere, or where it is refused, the thread
 * keeps the process's priority, and only the log's catching up under load differs.
 */
export function lowerThreadPriority(by: number): void {
  if (by <= 0) return;
  try {
    const [pid, , tid] = readlinkSync('/proc/thread-self').split('/');
    if (Number(pid) !== process.pid || tid === undefined || Number(tid) === process.pid) return;
    setPriority(Number(tid), Math.min(NICEST, getPriority(Number(tid)) + by));
  } catch {
    // Not Linux, or no /proc: the thread runs at the process's priority.
  }
}

/** A request to the worker; each is answered with a `WorkerReply` of the same `n`, in order. */
export type WorkerRequest = { n: number; op: 'write'; entries: readonly WriterEntry[] } | { n: number; op: 'trim' } | { n: number; op: 'close' };

export interface WorkerReply {
  n: number;
  /** Why the request failed, when it did. */
  error?: string;
}

if (parentPort) {
  const port = parentPort;
  const data = workerData as SqliteLogWorkerData;
  lowerThreadPriority(data.nice);
  let db: Database.Database | undefined;
  let writer: SqliteLogWriter | undefined;
  // Opened at the first request, so that a failure to open is that request's answer. The
  // main thread's connection made the tables before it started this worker.
  const open = (): SqliteLogWriter => {
    if (writer) return writer;
    const Sqlite = sqliteDriver('the sqlite delivery log');
    db = new Sqlite(data.path, { timeout: data.busyTimeoutMs });
    db.pragma(`synchronous = ${data.synchronous.toUpperCase()}`);
    return (writer = new SqliteLogWriter(db, data.limits));
  };
  port.on('message', (request: WorkerRequest) => {
    const reply: WorkerReply = { n: request.n };
    try {
      if (request.op === 'write') open().write(request.entries);
      else if (request.op === 'trim') open().trim();
      else {
        db?.close();
        port.close();
      }
    } catch (err) {
      reply.error = (err as Error).message;
    }
    if (request.op !== 'close') port.postMessage(reply);
  });
}
