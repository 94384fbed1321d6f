/**
 * The `upstreams` and `cache` parts of the reload transaction, without sockets: the new sets
 * are opened in prepare and nothing else changes until apply; a refused or failed reload closes
 * them and leaves the running ones; apply swaps and empties the cache; the replaced sets close
 * only after the drain time (then the cache is emptied once more); the cache part applies new
 * limits and puts the old ones back on rollback.
 */
import { describe, expect, test } from 'bun:test';
import { AnswerCache } from '../../src/cache/answer-cache.ts';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { LiveConfig, type LivePart } from '../../src/daemon/live-config.ts';
import { cachePart, drainMs, LiveUpstreams } from '../../src/daemon/live-upstreams.ts';
import type { UpstreamOptions } from '../../src/proxy/proxy.ts';
import type { UpstreamSet } from '../../src/proxy/upstream-set.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { waitFor } from '../proxy/upstream-contract.ts';

const load = (text: string): Config => loadConfigText(`listen: [127.0.0.1:5399]\ndatapath: fake\n${text}`, 'dnsseal.yaml', new Map(), { readFile: () => '', resolvTexts: () => [] });
const base = load('upstreams: { default: 192.0.2.1 }\n');

interface FakeSet {
  name: string;
  servers: string;
  closed: boolean;
}

/** A proxy double: sets that record being closed, and the sets it serves with. */
function fakeProxy(failOpen?: string) {
  const opened: FakeSet[] = [];
  const make = (o: UpstreamOptions) =>
    new Map(
      o.upstreams.map((u) => {
        const s: FakeSet = { name: u.name, servers: u.servers.map((x) => x.address).join(','), closed: false };
        opened.push(s);
        return [u.name, Object.assign(s, { close: () => void (s.closed = true) }) as unknown as UpstreamSet];
      }),
    );
  let serving = make({ upstreams: base.upstreams, upstreamTimeoutMs: 2000 });
  return {
    opened,
    serving: () => [...serving.values()] as unknown as FakeSet[],
    proxy: {
      openUpstreams: async (o: UpstreamOptions) => {
        if (failOpen && o.upstreams.some((u) => u.servers.some((s) => s.address === failOpen))) throw new Error(`bind ${failOpen}: EADDRNOTAVAIL`);
        return make(o);
      },
      replaceUpstreams: (next: Map<string, UpstreamSet>) => {
        const old = serving;
        serving = next;
        return old;
      },
    },
  };
}

/** A part that refuses (prepare) or fails (apply) after the upstreams part. */
function other(how: 'refuse' | 'fail'): LivePart {
  return {
    name: 'other',
    owns: ['tables'],
    prepare: () => {
      if (how === 'refuse') throw new Error('refused');
      return null;
    },
    apply: () => {
      if (how === 'fail') throw new Error('broke');
    },
    rollback: () => {},
  };
}

describe('daemon/live-upstreams', () => {
  test('opens the new servers, swaps them in and empties the cache when the upstreams change', async () => {
    const f = fakeProxy();
    let cleared = 0;
    const up = new LiveUpstreams({ proxy: f.proxy, cache: { clear: () => ((cleared += 1), 0) }, log: silentLogger, drainMs: () => 20 });
    const live = new LiveConfig(base, [up.part()]);
    const next = load('upstreams: { default: [192.0.2.2, 192.0.2.3], lan: 192.168.1.1 }\nupstream_timeout: 500\n');
    const r = await live.reload(next);
    expect(r.plan.parts).toEqual([{ name: 'upstreams', keys: ['upstreamTimeoutMs', 'upstreams'] }]);
    expect(r.plan.restartNeeded).toEqual([]);
    expect(f.serving().map((s) => [s.name, s.servers])).toEqual([
      ['default', '192.0.2.2,192.0.2.3'],
      ['lan', '192.168.1.1'],
    ]);
    expect(live.config.upstreamTimeoutMs).toBe(500);
    expect(cleared).toBe(1);
    // the replaced set serves what was sent to it, then closes; the cache is emptied again
    const old = f.opened[0]!;
    expect(old.closed).toBe(false);
    expect(up.drainingCount).toBe(1);
    await waitFor(() => old.closed, 'the replaced set closed after the drain time');
    expect(cleared).toBe(2);
    expect(up.drainingCount).toBe(0);
    expect(f.serving().every((s) => !s.closed)).toBe(true);
  });

  test('changes nothing and says why when the new servers cannot be opened', async () => {
    const f = fakeProxy('192.0.2.99');
    const up = new LiveUpstreams({ proxy: f.proxy, cache: { clear: () => 0 }, log: silentLogger });
    const live = new LiveConfig(base, [up.part()]);
    await expect(live.reload(load('upstreams: { default: [192.0.2.2, 192.0.2.99] }\n'))).rejects.toMatchObject({ code: 'reload_invalid', message: expect.stringContaining('EADDRNOTAVAIL') });
    expect(f.serving().map((s) => s.servers)).toEqual(['192.0.2.1']);
    expect(live.config).toBe(base);
  });

  test('refuses an unreadable upstream_tls_ca and keeps the running servers', async () => {
    const f = fakeProxy();
    const up = new LiveUpstreams({ proxy: f.proxy, cache: { clear: () => 0 }, log: silentLogger });
    const live = new LiveConfig(base, [up.part()]);
    await expect(live.reload(load('upstreams: { default: "tls://192.0.2.2#dns.example" }\nupstream_tls_ca: /nonexistent/ca.pem\n'))).rejects.toThrow('upstream_tls_ca /nonexistent/ca.pem: cannot read it');
    expect(f.opened).toHaveLength(1);
    expect(f.serving().map((s) => s.servers)).toEqual(['192.0.2.1']);
  });

  test.each(['refuse', 'fail'] as const)('closes the opened servers and keeps the running ones when another part %ss', async (how) => {
    const f = fakeProxy();
    let cleared = 0;
    const up = new LiveUpstreams({ proxy: f.proxy, cache: { clear: () => ((cleared += 1), 0) }, log: silentLogger });
    const live = new LiveConfig(base, [up.part(), other(how)]);
    const next = { ...load('upstreams: { default: 192.0.2.2 }\n'), tables: [] };
    await expect(live.reload({ ...next, tables: [{ id: 'x', group: 7, rules: [] }] })).rejects.toMatchObject({ code: how === 'refuse' ? 'reload_invalid' : 'reload_failed' });
    expect(f.opened.map((s) => [s.servers, s.closed])).toEqual([
      ['192.0.2.1', false],
      ['192.0.2.2', true],
    ]);
    expect(f.serving().map((s) => s.servers)).toEqual(['192.0.2.1']);
    expect(up.drainingCount).toBe(0);
    expect(live.config).toBe(base);
  });

  test('closes the replaced servers at once when the daemon stops during the drain', async () => {
    const f = fakeProxy();
    const up = new LiveUpstreams({ proxy: f.proxy, cache: { clear: () => 0 }, log: silentLogger });
    await new LiveConfig(base, [up.part()]).reload(load('upstreams: { default: 192.0.2.2 }\n'));
    expect(f.opened[0]!.closed).toBe(false);
    up.close();
    expect(f.opened[0]!.closed).toBe(true);
    expect(f.opened[1]!.closed).toBe(false);
  });

  test('waits every timeout a query on the old servers can take when it computes the drain time', () => {
    // 3 servers tried, over UDP and again over TCP, one timeout each, and a second to spare
    expect(drainMs(2000)).toBe(13_000);
  });
});

describe('daemon/live-upstreams cache part', () => {
  test('applies new limits, turns the cache off and on, and puts the old limits back on rollback', async () => {
    const cache = new AnswerCache({ clock: new FakeClock() });
    const live = new LiveConfig(base, [cachePart(cache), other('fail')]);
    const next = load('upstreams: { default: 192.0.2.1 }\ncache_size: 0\ncache_stale: 3600\ncache_prefetch: true\n');
    const r = await new LiveConfig(base, [cachePart(cache)]).reload(next);
    expect(r.plan.parts).toEqual([{ name: 'cache', keys: ['cacheSize', 'cacheStaleS', 'cachePrefetch'] }]);
    expect([cache.enabled, cache.settings.staleMaxS, cache.settings.prefetch]).toEqual([false, 3600, true]);
    await new LiveConfig(next, [cachePart(cache)]).reload(load('upstreams: { default: 192.0.2.1 }\ncache_size: 500\ncache_bytes: 100000\n'));
    expect([cache.enabled, cache.settings.maxEntries, cache.settings.maxBytes, cache.settings.staleMaxS]).toEqual([true, 500, 100_000, 0]);
    // another part fails after this one: the running limits come back
    await expect(live.reload({ ...load('upstreams: { default: 192.0.2.1 }\ncache_size: 7\n'), tables: [{ id: 'x', group: 7, rules: [] }] })).rejects.toMatchObject({ code: 'reload_failed' });
    expect(cache.settings.maxEntries).toBe(500);
  });
});
