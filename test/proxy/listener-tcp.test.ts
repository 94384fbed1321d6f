/**
 * RFC 7766 behaviour of the TCP listener with a scripted handler: pipelined queries answered
 * out of order, messages split across segments and several in one, the idle timeout, a cap
 * on queries in flight, and garbage lengths closing only that connection.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import type { ClientInfo, Listener, QueryHandler } from '../../src/proxy/handler.ts';
import { startTcpListener } from '../../src/proxy/listener-tcp.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import { silentLogger } from '../../src/util/log.ts';

/** A 12-byte "query" whose first two bytes are the ID; byte 2 tells the handler how long to wait (×10 ms). */
function msg(id: number, delay10ms = 0): Uint8Array {
  return Uint8Array.from([id >> 8, id & 0xff, delay10ms, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

const echo: QueryHandler = async (q) => {
  if (q[2]) await Bun.sleep(q[2] * 10);
  const a = q.slice();
  a[3] = 0x80;
  return a;
};

const open: Array<Listener> = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function listen(handle: QueryHandler = echo, opts: { idleMs?: number; maxInFlight?: number; maxConnections?: number } = {}) {
  const counters = newProxyCounters();
  const l = await startTcpListener({ hostname: '127.0.0.1', port: 0, handle, counters, log: silentLogger, ...opts });
  open.push(l);
  return { l, counters };
}

/** A raw client: collects answer IDs in arrival order and notices the close. */
async function client(port: number) {
  const reader = new FrameReader();
  const ids: number[] = [];
  const closed = Promise.withResolvers<void>();
  let waiters: Array<() => void> = [];
  const sock = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data: (_s, chunk) => {
        const r = reader.push(chunk);
        if (r.kind === 'frames') for (const f of r.frames) ids.push((f[0]! << 8) | f[1]!);
        const w = waiters;
        waiters = [];
        w.forEach((fn) => fn());
      },
      close: () => closed.resolve(),
      error: () => closed.resolve(),
    },
  });
  const until = async (n: number) => {
    while (ids.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { sock, ids, closed: closed.promise, until };
}

describe('proxy/listener-tcp', () => {
  test('answers pipelined queries as they complete when they finish out of order', async () => {
    const { l } = await listen();
    const c = await client(l.port);
    c.sock.write(new Uint8Array([...frame(msg(1, 8)), ...frame(msg(2, 0)), ...frame(msg(3, 4))]));
    await c.until(3);
    expect(c.ids).toEqual([2, 3, 1]);
    c.sock.end();
  });

  test('reassembles a message when it arrives one byte at a time', async () => {
    const { l } = await listen();
    const c = await client(l.port);
    const bytes = frame(msg(7));
    for (const b of bytes) {
      c.sock.write(Uint8Array.of(b));
      await Bun.sleep(1);
    }
    await c.until(1);
    expect(c.ids).toEqual([7]);
    c.sock.end();
  });

  test('closes the connection when it stays idle past the timeout', async () => {
    const { l, counters } = await listen(echo, { idleMs: 50 });
    const c = await client(l.port);
    await c.closed;
    expect(counters.tcpClosed.idle).toBe(1);
  });

  test('closes a connection that declares a length and never completes it (slowloris)', async () => {
    const { l, counters } = await listen(echo, { idleMs: 50 });
    const c = await client(l.port);
    c.sock.write(Uint8Array.from([0xff, 0xff, 1, 2, 3]));
    await c.closed;
    expect(counters.tcpClosed.idle).toBe(1);
  });

  test('keeps the connection while a slow query is in flight when the idle time passes', async () => {
    const { l } = await listen(echo, { idleMs: 30 });
    const c = await client(l.port);
    c.sock.write(frame(msg(9, 8)));
    await c.until(1);
    expect(c.ids).toEqual([9]);
    await c.closed; // and then idles out
  });

  test.each([
    ['a zero length', Uint8Array.from([0, 0])],
    ['a length shorter than a header', Uint8Array.from([0, 5, 1, 2, 3, 4, 5])],
  ])('closes only that connection when it sends %s', async (_w, bytes) => {
    const { l, counters } = await listen();
    const bad = await client(l.port);
    const good = await client(l.port);
    bad.sock.write(bytes);
    await bad.closed;
    expect(counters.tcpClosed.garbage).toBe(1);
    good.sock.write(frame(msg(4)));
    await good.until(1);
    expect(good.ids).toEqual([4]);
    good.sock.end();
  });

  test('holds queries beyond the in-flight cap and answers them all when earlier ones finish', async () => {
    let inFlight = 0;
    let peak = 0;
    const handle: QueryHandler = async (q) => {
      peak = Math.max(peak, ++inFlight);
      await Bun.sleep(5);
      inFlight--;
      return q.slice();
    };
    const { l } = await listen(handle, { maxInFlight: 4 });
    const c = await client(l.port);
    const all: number[] = [];
    for (let i = 0; i < 20; i++) all.push(...frame(msg(i)));
    c.sock.write(Uint8Array.from(all));
    await c.until(20);
    expect(c.ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(4);
    c.sock.end();
  });

  test('closes connections beyond the cap and keeps serving the others', async () => {
    const { l, counters } = await listen(echo, { maxConnections: 2 });
    const a = await client(l.port);
    const b = await client(l.port);
    const extra = await client(l.port);
    await extra.closed;
    expect(counters.tcpClosed.limit).toBe(1);
    a.sock.write(frame(msg(1)));
    b.sock.write(frame(msg(2)));
    await a.until(1);
    await b.until(1);
    a.sock.end();
    b.sock.end();
  });

  test('tells the handler the client address and transport when a query arrives', async () => {
    let seen: ClientInfo | null = null;
    const { l } = await listen(async (q, cl) => {
      seen = cl;
      return q.slice();
    });
    const c = await client(l.port);
    c.sock.write(frame(msg(1)));
    await c.until(1);
    expect(seen!).toMatchObject({ address: '127.0.0.1', transport: 'tcp' });
    expect(seen!.port).toBeGreaterThan(0);
    c.sock.end();
  });
});

describe('proxy/tcp-framing', () => {
  test('splits several messages and keeps a partial one when they share a chunk', () => {
    const r = new FrameReader();
    const two = [...frame(msg(1)), ...frame(msg(2))];
    const res = r.push(Uint8Array.from([...two, 0, 12, 9]));
    expect(res.kind === 'frames' && res.frames.map((f) => f[1])).toEqual([1, 2]);
    expect(r.buffered).toBe(3);
    const rest = r.push(Uint8Array.from(msg(3).subarray(1)));
    expect(rest.kind === 'frames' && rest.frames.length).toBe(1);
    expect(r.buffered).toBe(0);
  });

  test('frames a message with its big-endian length when encoding', () => {
    expect(Array.from(frame(new Uint8Array(300)).subarray(0, 2))).toEqual([1, 44]);
  });
});
