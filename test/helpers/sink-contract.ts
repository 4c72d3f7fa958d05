import { ClosedSinkError, type Sink } from '../../lib/deliver/sink';
import { makeEvent } from './events';

/**
 * The close semantics every sink shares: a write after close rejects with
 * ClosedSinkError, and a second close is harmless.
 */
export function describeSinkContract(name: string, make: () => Sink | Promise<Sink>): void {
  describe(`${name} honours the sink contract`, () => {
    it('rejects a write after close with ClosedSinkError', async () => {
      const sink = await make();
      await sink.close();
      await expect(sink.write([makeEvent()])).rejects.toBeInstanceOf(ClosedSinkError);
    });

    it('closes twice without error', async () => {
      const sink = await make();
      await sink.close();
      await expect(sink.close()).resolves.toBeUndefined();
    });
  });
}
