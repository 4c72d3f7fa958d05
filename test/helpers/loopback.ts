import type { AddressInfo, Server } from 'node:net';

/** A test server on 127.0.0.1: how it starts listening and where it is. */
export abstract class LoopbackListener {
  protected abstract readonly server: Server;

  /** Listens on 127.0.0.1, on `port` or a free one. */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }
}
