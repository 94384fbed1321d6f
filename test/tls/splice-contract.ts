/** One splice suite, run over the in-memory fake and over real loopback TCP (splice.test.ts). */
import { afterAll, describe, expect, test } from 'bun:test';
import { Splice, type SpliceResult } from '../../src/tls/splice.ts';
import { Collector, type PairMaker, waitFor, writeAll } from './endpoint-pairs.ts';

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
}

export function spliceSuite(maker: PairMaker): void {
  describe(`splice (${maker.name})`, () => {
    afterAll(() => maker.close());

    async function rig(opts: { held?: boolean } = {}) {
      const [nearA, farA] = await maker.pair();
      const [nearB, farB] = await maker.pair();
      const A = new Collector(farA);
      const B = new Collector(farB);
      const result: { value?: SpliceResult; bytes?: { ab: number; ba: number }; calls: number } = { calls: 0 };
      const held: Uint8Array[] = [];
      const splice = new Splice(nearA, nearB, {
        onDone: (r, bytes) => Object.assign(result, { value: r, bytes, calls: result.calls + 1 }),
        held: opts.held ? { data: (c) => void held.push(c.slice()), end() {} } : undefined,
      });
      return { farA, farB, A, B, splice, result, held };
    }

    test('bytes arrive byte-exact both ways and both ends close cleanly when both sides finish', async () => {
      const { farA, farB, A, B, result } = await rig();
      const up = random(1 << 20);
      const down = random(3 << 19);
      await Promise.all([writeAll(farA, A, up), writeAll(farB, B, down)]);
      farA.shutdown();
      farB.shutdown();
      await waitFor(() => result.value !== undefined, 'the splice to finish');
      await waitFor(() => A.closed && B.closed, 'both far ends to close');
      expect(result.value).toBe('ok');
      expect(result.bytes).toEqual({ ab: up.length, ba: down.length });
      expect(Buffer.compare(B.all(), up)).toBe(0);
      expect(Buffer.compare(A.all(), down)).toBe(0);
      expect([A.ended, B.ended, A.error, B.error]).toEqual([true, true, undefined, undefined]);
      expect(result.calls).toBe(1);
    });

    test('a reply still flows back when the sender half-closes first', async () => {
      const { farA, farB, A, B, result } = await rig();
      farA.write(new TextEncoder().encode('request'));
      farA.shutdown();
      await waitFor(() => B.ended, 'the FIN to reach the far side');
      expect(new TextDecoder().decode(B.all())).toBe('request');
      expect(A.ended).toBe(false);
      farB.write(new TextEncoder().encode('response'));
      farB.shutdown();
      await waitFor(() => A.ended && result.value !== undefined, 'the response and its FIN');
      expect(new TextDecoder().decode(A.all())).toBe('response');
      expect(result.value).toBe('ok');
    });

    test('the sender is held back when the receiver does not read', async () => {
      const { farA, farB, A, B, result } = await rig();
      farB.pause();
      const big = random(16 << 20);
      let taken = 0;
      let refused = false;
      // Offer everything without waiting; backpressure must make write take less.
      for (let off = 0; off < big.length; off += 65536) {
        const n = farA.write(big.subarray(off, off + 65536));
        taken += Math.max(0, n);
        if (n < 65536) {
          refused = true;
          break;
        }
      }
      expect(refused).toBe(true);
      expect(taken).toBeLessThan(big.length);
      farB.resume();
      await writeAll(farA, A, big.subarray(taken));
      farA.shutdown();
      await waitFor(() => B.ended, 'everything to arrive after resume');
      expect(B.bytes).toBe(big.length);
      expect(Buffer.compare(B.all(), big)).toBe(0);
      farB.shutdown();
      await waitFor(() => result.value !== undefined, 'the splice to finish');
      expect(result.value).toBe('ok');
    });

    test('the other side is reset when one side resets mid-transfer', async () => {
      const { farA, farB, A, B, result } = await rig();
      farA.write(random(1000));
      await waitFor(() => B.bytes === 1000, 'the first bytes');
      farB.reset();
      await waitFor(() => A.closed, 'the far end to be reset');
      expect(A.error).toBeDefined();
      expect(A.ended).toBe(false);
      expect(result.value).toBe('reset');
      await Bun.sleep(0);
      expect(result.calls).toBe(1);
    });

    test('b to a waits until release when it is held', async () => {
      const { farA, farB, A, splice, held } = await rig({ held: true });
      farB.write(new TextEncoder().encode('HTTP/1.1 200 OK\r\n\r\n'));
      await waitFor(() => held.length > 0, 'the held bytes');
      expect(A.bytes).toBe(0);
      splice.release(new TextEncoder().encode('first'));
      farB.write(new TextEncoder().encode('-then'));
      await waitFor(() => A.bytes === 10, 'released bytes');
      expect(new TextDecoder().decode(A.all())).toBe('first-then');
      farA.reset();
    });
  });
}
