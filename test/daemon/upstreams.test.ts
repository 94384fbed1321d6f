/**
 * Upstream server lists in the running daemon (in-process, real sockets on loopback): one dead
 * server of two costs the first query one timeout (a blackhole) or nothing (a refusing host)
 * and later queries go straight to the live one; status shows each server's health, errno and
 * latency; a reload replaces the servers while queries flow (none lost, the cache emptied, the
 * old servers asked nothing new), adds a name a new rule uses, and a server list that cannot be
 * opened is refused with nothing changed.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { waitFor } from '../proxy/upstream-contract.ts';
import { answerLab, aRecords, asked, namedUpstream } from './answer-lab.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const POLICY = 'channels:\n  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }\ntables:\n  default:\n    - { match: "*.corp.test", channel: hub }\n';

async function upstream(addrs: Record<string, string> = {}) {
  const up = await namedUpstream(addrs);
  cleanup.push(() => up.stop());
  return up;
}

async function lab(text: string) {
  const l = await answerLab(text);
  cleanup.push(() => l.stop());
  return l;
}

describe('daemon/upstreams', () => {
  test('pays one timeout for a blackholed first server and then goes straight to the live one', async () => {
    const dead = await FakeUpstream.start(() => null);
    cleanup.push(() => dead.stop());
    const live = await upstream({ 'a.corp.test': '198.51.100.1', 'b.corp.test': '198.51.100.2', 'c.example': '192.0.2.3' });
    // 1 s, not 300 ms: the live server answers in this process, and a process held off the CPU
    // for longer than the timeout may find its timer expired when it wakes, answer or not
    // (the client waits 3 s: the dead server's 1 s still fits)
    const l = await lab(`upstream_timeout: 1000\nupstreams:\n  default: [127.0.0.1:${dead.port}, 127.0.0.1:${live.port}]\n${POLICY}`);
    expect(aRecords(await l.ask('a.corp.test'))).toEqual(['198.51.100.1']);
    expect(aRecords(await l.ask('b.corp.test'))).toEqual(['198.51.100.2']);
    expect(aRecords(await l.ask('c.example'))).toEqual(['192.0.2.3']);
    // the dead server saw the first query only (its probes ask ". NS")
    expect(['a.corp.test', 'b.corp.test', 'c.example'].map((n) => asked(dead, n))).toEqual([1, 0, 0]);
    expect(['a.corp.test', 'b.corp.test', 'c.example'].map((n) => asked(live, n))).toEqual([1, 1, 1]);
    const s = await l.status();
    expect(s.upstreams.map((u) => [u.name, u.index, u.server, u.health])).toEqual([
      ['default', 0, `127.0.0.1:${dead.port}`, 'down'],
      ['default', 1, `127.0.0.1:${live.port}`, 'up'],
    ]);
    expect(s.upstreams[0]).toMatchObject({ failures: { timeout: 1 }, last_error: expect.stringContaining('no answer within 1000 ms'), latency_ms: null });
    expect(s.upstreams[1]!.answers).toBe(3);
    expect(typeof s.upstreams[1]!.latency_ms).toBe('number');
    expect(s.servfail.timeout).toBe(0);
  });

  test('moves on at once from a refusing first server and shows its errno', async () => {
    const gone = await FakeUpstream.start(() => null);
    const port = gone.port;
    gone.stop(); // nothing listens there now: the host answers ICMP port unreachable
    const live = await upstream({ 'a.corp.test': '198.51.100.1' });
    // a long timeout: a failover that waited for it would not answer within the client's 3 s
    const l = await lab(`upstream_timeout: 10000\nupstreams:\n  default: [127.0.0.1:${port}, 127.0.0.1:${live.port}]\n${POLICY}`);
    expect(aRecords(await l.ask('a.corp.test'))).toEqual(['198.51.100.1']);
    const s = await l.status();
    expect(s.upstreams[0]).toMatchObject({ health: 'down', errno: 'ECONNREFUSED', failures: { refused: 1 } });
    expect(s.upstreams[1]).toMatchObject({ health: 'up', answers: 1 });
  });

  test('replaces the servers by a reload while queries flow, without losing one and with the cache emptied', async () => {
    const a = await upstream({ 'www.corp.test': '198.51.100.1' });
    const b = await upstream({ 'www.corp.test': '198.51.100.2' });
    const l = await lab(`upstreams: { default: 127.0.0.1:${a.port} }\n${POLICY}`);
    let stop = false;
    let lost = 0;
    const seen: string[] = [];
    const flow = (async () => {
      while (!stop) {
        try {
          seen.push(aRecords(await l.ask('www.corp.test'))[0] ?? 'none');
        } catch {
          lost++;
        }
      }
    })();
    await waitFor(() => seen.length > 20, 'answers from the first upstream (cached)');
    l.write(`upstreams: { default: [127.0.0.1:${b.port}] }\n${POLICY}`);
    const r = await l.reload();
    expect(r.restartNeeded).toEqual([]);
    const fromA = asked(a, 'www.corp.test');
    const n = seen.length;
    await waitFor(() => seen.length > n + 20, 'answers after the reload');
    stop = true;
    await flow;
    expect(lost).toBe(0);
    // the answer A gave is not served from the cache after the swap; A is asked nothing new
    expect(seen.slice(n + 1)).not.toContain('198.51.100.1');
    expect(seen.at(-1)).toBe('198.51.100.2');
    expect(asked(a, 'www.corp.test')).toBe(fromA);
    expect(asked(b, 'www.corp.test')).toBe(1);
    const s = await l.status();
    expect(s.upstreams.map((u) => u.server)).toEqual([`127.0.0.1:${b.port}`]);
    // the addresses of both answers were registered
    expect(l.d.info.registry.list().map((e) => e.addr).sort()).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  test('adds an upstream name and a rule naming it in one reload', async () => {
    const a = await upstream();
    const lan = await upstream({ 'nas.lan.test': '192.168.1.20' });
    const l = await lab(`upstreams: { default: 127.0.0.1:${a.port} }\n${POLICY}`);
    expect(aRecords(await l.ask('nas.lan.test'))).toEqual(['192.0.2.254']);
    l.write(`upstreams: { default: 127.0.0.1:${a.port}, lan: 127.0.0.1:${lan.port} }\n${POLICY}    - { match: "*.lan.test", channel: hub, upstream: lan }\n`);
    await l.reload();
    expect(aRecords(await l.ask('nas.lan.test'))).toEqual(['192.168.1.20']);
    expect(asked(lan, 'nas.lan.test')).toBe(1);
    expect((await l.status()).upstreams.map((u) => u.name)).toEqual(['default', 'lan']);
  });

  test('refuses a reload whose servers cannot be opened and keeps answering from the running ones', async () => {
    const a = await upstream({ 'www.corp.test': '198.51.100.1' });
    const b = await upstream({ 'www.corp.test': '198.51.100.2' });
    const l = await lab(`upstreams: { default: 127.0.0.1:${a.port} }\n${POLICY}`);
    // a source address this host does not have: the new sockets cannot be bound
    l.write(`upstream_source: 192.0.2.99\nupstreams: { default: 127.0.0.1:${b.port} }\n${POLICY}`);
    await expect(l.reload()).rejects.toMatchObject({ code: 'reload_invalid' });
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['198.51.100.1']);
    const s = await l.status();
    expect(s.upstreams.map((u) => u.server)).toEqual([`127.0.0.1:${a.port}`]);
    expect(s.reload).toMatchObject({ last_ok: false, last_error: expect.stringContaining('192.0.2.99') });
    expect(asked(b, 'www.corp.test')).toBe(0);
  });
});
