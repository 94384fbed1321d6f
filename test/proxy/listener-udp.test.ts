/**
 * The UDP listener with a scripted handler: an answer in hand (a cache hit: no promise) and a
 * promised one both go out; null sends nothing; a handler that throws or rejects costs that
 * query its answer, never the listener (the next query is answered).
 */
import { afterEach, describe, expect, test } from 'bun:test';
import type { Listener, QueryHandler } from '../../src/proxy/handler.ts';
import { startUdpListener } from '../../src/proxy/listener-udp.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { silentLogger } from '../../src/util/log.ts';

/** Byte 2 of a "query" tells the handler what to do. */
const IN_HAND = 0;
const PROMISED = 1;
const NOTHING = 2;
const THROWS = 3;
const REJECTS = 4;

function msg(id: number, how: number): Uint8Array {
  return Uint8Array.from([id >> 8, id & 0xff, how, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

const answer = (q: Uint8Array) => {
  const a = q.slice();
  a[3] = 0x80;
  return a;
};

const handle: QueryHandler = (q) => {
  switch (q[2]) {
    case IN_HAND:
      return answer(q);
    case PROMISED:
      return Bun.sleep(5).then(() => answer(q));
    case NOTHING:
      return null;
    case THROWS:
      throw new Error('a bug in a step');
    default:
      return Promise.reject(new Error('a bug after a wait'));
  }
};

const open: Listener[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

/** Sends each query, then waits until the answers to `expectIds` came (or 5 s): the IDs answered, in order. */
async function exchange(queries: Uint8Array[], expectIds: number[]): Promise<number[]> {
  const l = await startUdpListener({ hostname: '127.0.0.1', port: 0, handle, counters: newProxyCounters(), log: silentLogger });
  open.push(l);
  const got: number[] = [];
  let wake = () => {};
  const c = await Bun.udpSocket({
    binaryType: 'uint8array',
    socket: {
      data(_s, d) {
        if (d[3] === 0x80) got.push((d[0]! << 8) | d[1]!);
        wake();
      },
    },
  });
  try {
    for (const q of queries) c.send(q, l.port, '127.0.0.1');
    const deadline = Date.now() + 5000;
    while (!expectIds.every((id) => got.includes(id)) && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    // What should not come has had the time the promised answers took (they came).
    return got;
  } finally {
    c.close();
  }
}

describe('UDP listener', () => {
  test('an answer in hand and a promised one both go out', async () => {
    const got = await exchange([msg(1, IN_HAND), msg(2, PROMISED), msg(3, IN_HAND)], [1, 2, 3]);
    expect(got.sort()).toEqual([1, 2, 3]);
  });

  test('null sends nothing; a throwing or rejecting handler loses that answer, not the listener', async () => {
    const got = await exchange([msg(1, NOTHING), msg(2, THROWS), msg(3, REJECTS), msg(4, IN_HAND), msg(5, PROMISED)], [4, 5]);
    expect(got.sort()).toEqual([4, 5]);
  });
});
