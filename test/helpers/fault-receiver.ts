import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { decodeEnvelope, type Event } from '../../lib';
import { LoopbackListener } from './loopback';
import { waitFor } from './wait';

/** One POST as the receiver saw it. */
export interface Delivery {
  /** Order of arrival, from 0. */
  index: number;
  /** performance.now() when the whole body had arrived. */
  receivedAt: number;
  /** performance.now() when the answer was written; undefined while it is delayed (or never, if the client went away). */
  answeredAt?: number;
  status: number;
  headers: http.IncomingHttpHeaders;
  events: Event[];
}

/**
 * A webhook endpoint on 127.0.0.1 that records every request as it arrives (before it
 * answers), and can answer late (`delayMs`) or with another status (`status`). A request
 * whose client went away before the answer is still recorded: the client may send its
 * events again, and that is the duplicate at-least-once allows.
 */
export class RecordingReceiver extends LoopbackListener {
  readonly deliveries: Delivery[] = [];
  /** Milliseconds to wait before answering each request. */
  delayMs = 0;
  /** Status of each answer. */
  status: (d: Delivery) => number = () => 200;
  protected readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let events: Event[] = [];
      try {
        events = decodeEnvelope(Buffer.concat(chunks).toString('utf8')).events;
      } catch {
        // Not an envelope: recorded with no events.
      }
      const d: Delivery = { index: this.deliveries.length, receivedAt: performance.now(), status: 0, headers: req.headers, events };
      d.status = this.status(d);
      this.deliveries.push(d);
      const answer = () => {
        d.answeredAt = performance.now();
        res.writeHead(d.status).end();
      };
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
  });

  /** Events of the requests answered 2xx, or of every request (`all`), in order of arrival. */
  events(all = false): Event[] {
    return this.deliveries.filter((d) => all || (d.status >= 200 && d.status < 300)).flatMap((d) => d.events);
  }

  /** Distinct event ids received (in requests answered 2xx). */
  distinct(): Set<string> {
    return new Set(this.events().map((e) => e.id));
  }

  /** Waits until `pred` holds, saying what arrived if it never does. */
  until(pred: (r: this) => boolean, timeoutMs?: number): Promise<void> {
    return waitFor(() => pred(this), {
      ...(timeoutMs ? { timeoutMs } : {}),
      intervalMs: 20,
      describe: () => `${this.deliveries.length} requests, ${this.events().length} events (${this.distinct().size} distinct)`,
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What a scenario's receiver got against what took effect. */
export interface Tally {
  /** Operations that took effect (their events' ids or keys). */
  expected: number;
  /** Events received, duplicates included. */
  received: number;
  distinct: number;
  duplicates: number;
  /** Expected keys never received. */
  missing: string[];
  /** Keys received that no operation that took effect explains. */
  unexpected: string[];
  /** Whether the first arrival of each key follows the order of `expected`. */
  orderKept: boolean;
  /** Pairs of consecutive first arrivals out of order. */
  inversions: number;
  /** The first few of those pairs: [earlier arrival, later arrival that should have come first]. */
  inverted: Array<[string, string]>;
}

/**
 * Compares what arrived (keys in arrival order, duplicates included) with the keys of the
 * operations that took effect, in the order they took effect.
 */
export function tally(expected: readonly string[], received: readonly string[]): Tally {
  const firstSeen = [...new Set(received)];
  const want = new Set(expected);
  const got = new Set(received);
  const position = new Map(expected.map((k, i) => [k, i]));
  const known = firstSeen.filter((k) => position.has(k));
  const ranks = known.map((k) => position.get(k)!);
  let inversions = 0;
  const inverted: Array<[string, string]> = [];
  for (let i = 1; i < ranks.length; i++) {
    if (ranks[i] < ranks[i - 1]) {
      inversions++;
      if (inverted.length < 5) inverted.push([known[i - 1], known[i]]);
    }
  }
  return {
    expected: expected.length,
    received: received.length,
    distinct: got.size,
    duplicates: received.length - got.size,
    missing: expected.filter((k) => !got.has(k)),
    unexpected: firstSeen.filter((k) => !want.has(k)),
    orderKept: inversions === 0,
    inversions,
    inverted,
  };
}

const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');

/**
 * Prints one scenario's measurements and appends them, one JSON object a line, to
 * test-artifacts/faults.jsonl (jest runs files in parallel; appends of a line do not mix).
 */
export function report(scenario: string, data: Record<string, unknown>): void {
  const line = { scenario, at: new Date().toISOString(), ...data };
  console.log(`[faults] ${scenario}: ${JSON.stringify(data)}`);
  try {
    mkdirSync(ARTIFACTS, { recursive: true });
    appendFileSync(path.join(ARTIFACTS, 'faults.jsonl'), JSON.stringify(line) + '\n');
  } catch {
    // The console line is the report; the file is a convenience.
  }
}

/** A seeded generator (mulberry32), so that a failing run can be repeated: FAULT_SEED=<seed>. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: FAULT_SEED, else one drawn now (printed by the caller). */
export function faultSeed(): number {
  return process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : Math.floor(Math.random() * 2 ** 31);
}
