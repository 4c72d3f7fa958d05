// The worker thread of a SqliteDeliveryLog: it owns a connection of its own to the log's
// file and applies the entries the delivery process's main thread hands it, in order.
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
