import net from 'node:net';
import { LoopbackListener } from './loopback';

/**
 * What the link does to bytes:
 * - `pass`: forwards them as they come;
 * - `cut`: drops every connection, and closes each new one at once (a server gone away);
 * - `stall`: accepts connections and keeps every byte, in the directions `direction`
 *   says, without forwarding it (a peer that accepts and never answers); bytes kept are
 *   sent on when the link passes again, to whichever connection is still open;
 * - `trickle`: forwards one byte per `trickleMs` in each direction (or, per `direction`,
 *   in answers only) of each connection: a link slow enough that only a total deadline
 *   can end a request, since bytes keep coming.
 */
export type FaultMode = 'pass' | 'cut' | 'stall' | 'trickle';

/** Which bytes a stall or a trickle holds back: both ways, or only the server's answers (requests reach it whole). */
export type FaultDirection = 'both' | 'responses';

/** One direction of one connection: bytes waiting to be forwarded. */
class Pipe {
  private queue: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  forwarded = 0;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly to: net.Socket,
    readonly isResponse: boolean,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push(chunk);
    this.pump();
  }

  pump(): void {
    if (this.to.destroyed) return;
    const mode = this.proxy.modeFor(this.isResponse);
    if (mode === 'pass') {
      clearTimeout(this.timer);
      this.timer = undefined;
      for (const chunk of this.queue) {
        this.forwarded += chunk.length;
        this.to.write(chunk);
      }
      this.queue = [];
    } else if (mode === 'trickle') {
      if (this.timer || this.queue.length === 0) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.proxy.modeFor(this.isResponse) !== 'trickle' || this.to.destroyed) return this.pump();
        const head = this.queue[0];
        this.to.write(head.subarray(0, 1));
        this.forwarded += 1;
        if (head.length > 1) this.queue[0] = head.subarray(1);
        else this.queue.shift();
        this.pump();
      }, this.proxy.trickleMs);
    }
    // stall (or cut): kept until the mode changes.
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

interface Connection {
  client: net.Socket;
  upstream: net.Socket;
  pipes: [Pipe, Pipe];
}

/**
 * A TCP proxy on 127.0.0.1 in front of a real server (a webhook receiver, Redis), whose
 * link can be cut, stalled or made to trickle, and restored. The server is never touched.
 * Counts connections accepted per mode, so a test can tell that clients kept trying.
 */
export class FaultProxy extends LoopbackListener {
  protected readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  mode: FaultMode = 'pass';
  direction: FaultDirection = 'both';
  trickleMs = 200;
  /** Connections accepted, by the mode the link was in then. */
  readonly accepted: Record<FaultMode, number> = { pass: 0, cut: 0, stall: 0, trickle: 0 };
  /** When the mode last changed (performance.now()). */
  changedAt = performance.now();
  private swallowing = false;
  /** Answers lost by `loseNextAnswer()`, as latin1 text. */
  readonly swallowed: string[] = [];

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {
    super();
    this.server = net.createServer((client) => {
      this.accepted[this.mode]++;
      if (this.mode === 'cut') {
        client.destroy();
        return;
      }
      client.setNoDelay(true);
      const upstream = net.connect(this.targetPort, this.targetHost);
      upstream.setNoDelay(true);
      const conn: Connection = { client, upstream, pipes: [new Pipe(this, upstream, false), new Pipe(this, client, true)] };
      this.connections.add(conn);
      client.on('data', (chunk: Buffer) => conn.pipes[0].push(chunk));
      upstream.on('data', (chunk: Buffer) => {
        if (this.swallowing) {
          // The server did the work and answered; the answer is lost with the connection.
          this.swallowing = false;
          this.swallowed.push(chunk.toString('latin1'));
          conn.pipes.forEach((p) => p.stop());
          client.destroy();
          upstream.destroy();
          return;
        }
        conn.pipes[1].push(chunk);
      });
      const end = () => {
        conn.pipes.forEach((p) => p.stop());
        client.destroy();
        upstream.destroy();
        this.connections.delete(conn);
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
  }

  /** Connections open now. */
  get open(): number {
    return this.connections.size;
  }

  /** The mode one direction is in: a stall or trickle of answers only lets requests through. */
  modeFor(isResponse: boolean): FaultMode {
    return (this.mode === 'stall' || this.mode === 'trickle') && this.direction === 'responses' && !isResponse ? 'pass' : this.mode;
  }

  private set(mode: FaultMode): void {
    this.mode = mode;
    this.changedAt = performance.now();
    for (const c of this.connections) c.pipes.forEach((p) => p.pump());
  }

  /** Drops every connection, and every new one until the mode changes. */
  cut(): void {
    this.set('cut');
    for (const c of [...this.connections]) {
      c.client.destroy();
      c.upstream.destroy();
    }
  }

  /** Keeps bytes instead of forwarding them (both ways, or the server's answers only). */
  stall(direction: FaultDirection = 'both'): void {
    this.direction = direction;
    this.set('stall');
  }

  /** One byte per `ms` each way (or in the server's answers only). */
  trickle(ms = 200, direction: FaultDirection = 'both'): void {
    this.trickleMs = ms;
    this.direction = direction;
    this.set('trickle');
  }

  /**
   * The next bytes the server sends, on any connection, are dropped and that connection is
   * closed: a request the server carried out whose answer the network lost. New
   * connections are accepted as usual.
   */
  loseNextAnswer(): void {
    this.swallowing = true;
  }

  /**
   * Forwards again. With `dropHeld`, connections open now are closed first, so that what
   * a stall kept is never delivered late (a link that came back as a new one).
   */
  restore(options: { dropHeld?: boolean } = {}): void {
    if (options.dropHeld) {
      for (const c of [...this.connections]) {
        c.pipes.forEach((p) => p.stop());
        c.client.destroy();
        c.upstream.destroy();
      }
    }
    this.set('pass');
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
