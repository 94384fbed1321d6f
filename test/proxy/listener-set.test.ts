/**
 * The proxy's listen addresses changed live (issue 12): a reload binds the new addresses
 * before anything else changes, keeps the ones that stay (same socket, same port), closes those
 * it removed only after their last answers went out (UDP and TCP), and when an address cannot
 * be bound closes again whatever it bound and leaves the running set as it was.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { ListenerSet } from '../../src/proxy/listener-set.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import { silentLogger } from '../../src/util/log.ts';

/** A 12-byte "query": the first two bytes are the ID. */
const msg = (id: number) => Uint8Array.from([id >> 8, id & 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** Answers each query once `release()` is called (queries in flight until then). */
function gated() {
  let open = Promise.withResolvers<void>();
  let waiting = 0;
  const handle: QueryHandler = async (q) => {
    waiting++;
    await open.promise;
    waiting--;
    const a = q.slice();
    a[2] = 0x80;
    return a;
  };
  return {
    handle,
    get waiting() {
      return waiting;
    },
    release() {
      open.resolve();
      open = Promise.withResolvers<void>();
    },
  };
}

const sets: ListenerSet[] = [];
afterEach(async () => {
  while (sets.length) await sets.pop()!.close();
});

async function open(specs: string[], handle: QueryHandler) {
  const set = await ListenerSet.open(specs, { handle, counters: newProxyCounters(), log: silentLogger, drainMs: 2000 });
  sets.push(set);
  return set;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** A UDP client that collects answer IDs. */
async function udpClient() {
  const ids: number[] = [];
  const s = await Bun.udpSocket({ binaryType: 'uint8array', socket: { data: (_s, d) => void ids.push((d[0]! << 8) | d[1]!), error: () => {} } });
  return { ids, send: (port: number, id: number) => s.send(msg(id), port, '127.0.0.1'), close: () => s.close() };
}

/** Whether `port` is free for UDP and TCP on `host`. */
async function free(port: number, host = '127.0.0.1'): Promise<boolean> {
  let u;
  try {
    u = await Bun.udpSocket({ hostname: host, port });
    Bun.listen({ hostname: host, port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  } finally {
    u?.close();
  }
}

const udpPort = (set: ListenerSet, i = 0) => set.listeners.filter((l) => l.transport === 'udp')[i]!.port;

describe('proxy/listener-set', () => {
  test('keeps an address that stays on its socket and binds only the new one when prepared', async () => {
    const g = gated();
    const set = await open(['127.0.0.1:0'], g.handle);
    const kept = set.listeners[0]!;
    const change = await set.prepare(['127.0.0.1:0', '127.0.0.2:0']);
    expect(change.added.map((b) => b.spec)).toEqual(['127.0.0.2:0']);
    expect(change.removed).toEqual([]);
    expect(set.specs).toEqual(['127.0.0.1:0']); // nothing changed before commit
    set.commit(change);
    expect(set.specs).toEqual(['127.0.0.1:0', '127.0.0.2:0']);
    expect(set.listeners[0]).toBe(kept);
    expect(new Set(set.listeners.slice(2).map((l) => l.port)).size).toBe(1); // UDP and TCP on one port
  });

  test('answers the UDP queries in flight on a removed address before it closes', async () => {
    const g = gated();
    const set = await open(['127.0.0.1:0'], g.handle);
    const old = udpPort(set);
    const c = await udpClient();
    for (let id = 1; id <= 5; id++) c.send(old, id);
    await until('five queries in flight', () => g.waiting === 5);
    const change = await set.prepare(['127.0.0.2:0']);
    set.commit(change);
    const closed = set.settle(change);
    c.send(old, 6); // a client that has not moved yet is still answered while the address drains
    await until('the sixth query in flight', () => g.waiting === 6);
    g.release();
    await closed;
    expect(c.ids.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await free(old)).toBe(true);
    c.close();
  });

  test('lets a TCP connection on a removed address finish its answers, then closes it', async () => {
    const g = gated();
    const set = await open(['127.0.0.1:0'], g.handle);
    const port = udpPort(set);
    const reader = new FrameReader();
    const ids: number[] = [];
    let ended = false;
    const sock = await Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        data(_s, d) {
          const r = reader.push(new Uint8Array(d));
          if (r.kind === 'frames') for (const f of r.frames) ids.push((f[0]! << 8) | f[1]!);
        },
        close() {
          ended = true;
        },
      },
    });
    sock.write(frame(msg(1)));
    sock.write(frame(msg(2)));
    await until('two queries in flight', () => g.waiting === 2);
    const change = await set.prepare([]);
    set.commit(change);
    const closed = set.settle(change);
    // no new connection is accepted while the old one finishes
    await until('the port refuses connections', () =>
      Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } }).then(
        (s) => (s.end(), false),
        () => true,
      ),
    );
    expect(ended).toBe(false);
    g.release();
    await closed;
    await until('the connection ended', () => ended);
    expect(ids.sort()).toEqual([1, 2]);
  });

  test('closes what it bound and changes nothing when an address cannot be bound', async () => {
    const g = gated();
    const set = await open(['127.0.0.1:0'], g.handle);
    const before = set.listeners;
    const probe = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const spare = probe.port;
    probe.close();
    const err = await set.prepare(['127.0.0.1:0', `127.0.0.1:${spare}`, '192.0.2.1:53']).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('listen_failed');
    // the component prefix once: DnssealError adds it, the message must not repeat it
    expect(err?.message).toStartWith('proxy: cannot listen on 192.0.2.1:53 (udp): ');
    expect(err?.message).toContain('no local interface has this address');
    expect(set.listeners).toEqual(before);
    expect(await free(spare)).toBe(true);
  });

  test('closes the addresses a change bound when it is aborted', async () => {
    const g = gated();
    const set = await open(['127.0.0.1:0'], g.handle);
    const change = await set.prepare(['127.0.0.1:0', '127.0.0.2:0']);
    const added = change.added[0]!.udp.port;
    expect(await free(added, '127.0.0.2')).toBe(false);
    await set.abort(change);
    expect(set.specs).toEqual(['127.0.0.1:0']);
    expect(await free(added, '127.0.0.2')).toBe(true);
  });
});
