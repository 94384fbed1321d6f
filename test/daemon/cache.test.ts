/**
 * The answer cache in the running daemon (control socket, real UDP, fake data path): a cache
 * hit is registered exactly as a fresh answer is, before it is released — a flushed entry is
 * live again after a hit, a hit renews the entry's hold, a second client group gets its own
 * entry, and for a peer channel the hit waits for the peer like a fresh answer; with
 * `cache_size: 0` every query reaches the upstream; `flush --cache`; status figures; a reload
 * of the cache settings with queries flowing.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { tableGroup } from '../../src/policy/group.ts';
import type { FakeUpstream } from '../proxy/fake-upstream.ts';
import { waitFor } from '../proxy/upstream-contract.ts';
import { answerLab, aRecords, asked, namedUpstream, type AnswerLab } from './answer-lab.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const CHANNELS = 'channels:\n  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }\n  partner: { kind: peer, esp: aes256gcm16 }\n';
const RULES = 'tables:\n  default:\n    - { match: "*.corp.test", channel: hub }\n    - { match: "*.partner.test", channel: partner }\n';

async function lab(extra = '', deps: Parameters<typeof answerLab>[1] = {}, tables = ''): Promise<{ lab: AnswerLab; up: FakeUpstream }> {
  const up = await namedUpstream({ 'www.corp.test': '198.51.100.10', 'db.corp.test': '198.51.100.11', 'app.partner.test': '198.51.100.20', 'www.example': '192.0.2.80' });
  cleanup.push(() => up.stop());
  const l = await answerLab(`upstreams: { default: 127.0.0.1:${up.port} }\n${extra}${CHANNELS}${RULES}${tables}`, deps);
  cleanup.push(() => l.stop());
  return { lab: l, up };
}

describe('daemon/cache', () => {
  test('registers a hit again when the entry was flushed: live before the answer is out, the upstream not asked', async () => {
    const { lab: l, up } = await lab();
    const reg = l.d.info.registry;
    const entry = () => reg.list().find((e) => e.addr === '198.51.100.10');
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['198.51.100.10']);
    const first = entry()!;
    expect(first.retired).toBeUndefined();
    // flushed (the dnsmasq/nftset bug: the set entry goes while the resolver cache keeps answering)
    expect(await l.control_('flush', { name: 'www.corp.test' })).toEqual({ released: 1, retired: 1 });
    expect(entry()!.retired).toBe(true);
    expect(aRecords(await l.ask('www.corp.test'))).toEqual(['198.51.100.10']);
    expect(asked(up, 'www.corp.test')).toBe(1);
    const again = entry()!;
    expect(again.retired).toBeUndefined();
    expect(again.names).toEqual(['www.corp.test']);
    // renewed with the remaining TTL from the time of the hit
    expect(again.expiresMs).toBeGreaterThanOrEqual(first.expiresMs);
    const s = await l.status();
    expect(s.cache).toMatchObject({ enabled: true, entries: 1, hits: 1, misses: 1, inserts: 1, hit_ratio: 0.5 });
    expect(s.queries.protected).toBe(2);
    // a hit is not an upstream exchange
    expect(s.upstream_latency.count).toBe(1);
  });

  test('gives a client of another table its own entry when its first answer comes from the cache', async () => {
    // the eng table protects the same names through the same channel
    const { lab: l, up } = await lab('mode: gateway\nlan: [lo]\nclients:\n  - { cidr: 127.0.0.2/32, table: eng }\n', {}, '  eng:\n    - { match: "*.corp.test", channel: hub }\n');
    await l.ask('www.corp.test', '127.0.0.1');
    await l.ask('www.corp.test', '127.0.0.2');
    expect(asked(up, 'www.corp.test')).toBe(1);
    const groups = l.d.info.registry
      .list()
      .filter((e) => e.addr === '198.51.100.10')
      .map((e) => e.group)
      .sort((a, b) => a - b);
    expect(groups).toEqual([0, tableGroup('eng')].sort((a, b) => a - b));
    expect((await l.status()).cache?.hits).toBe(1);
  });

  test('holds a hit for a peer channel until the peer is ready, as it holds a fresh answer', async () => {
    const calls: string[] = [];
    let open = Promise.withResolvers<void>();
    const gated = Object.assign(new NoIpsec(), {
      peerAdded: async (channel: ChannelSpec, addr: string): Promise<void> => {
        calls.push(`${channel.name} ${addr}`);
        await open.promise;
      },
    });
    const { lab: l, up } = await lab('', { ipsec: gated });
    open.resolve();
    expect(aRecords(await l.ask('app.partner.test'))).toEqual(['198.51.100.20']);
    expect(calls).toEqual(['partner 198.51.100.20']);
    await l.control_('flush', { name: 'app.partner.test' });
    open = Promise.withResolvers<void>();
    let answered = false;
    const hit = l.ask('app.partner.test').then((a) => ((answered = true), a));
    await waitFor(() => calls.length === 2, 'the hit to call the peer hook');
    // another query goes all the way through meanwhile: the held one is still waiting for its peer
    expect(aRecords(await l.ask('www.example'))).toEqual(['192.0.2.80']);
    expect(answered).toBe(false);
    open.resolve();
    expect(aRecords(await hit)).toEqual(['198.51.100.20']);
    expect(asked(up, 'app.partner.test')).toBe(1);
    expect((await l.status()).cache?.hits).toBe(1);
  });

  test('sends every query to the upstream when cache_size is 0', async () => {
    const { lab: l, up } = await lab('cache_size: 0\n');
    for (let i = 0; i < 5; i++) expect(aRecords(await l.ask('www.corp.test'))).toEqual(['198.51.100.10']);
    expect(asked(up, 'www.corp.test')).toBe(5);
    expect((await l.status()).cache).toMatchObject({ enabled: false, entries: 0, hits: 0 });
  });

  test('asks the upstream once for repeated questions when the cache is on', async () => {
    const { lab: l, up } = await lab();
    for (let i = 0; i < 5; i++) await l.ask('WWW.corp.test');
    expect(asked(up, 'www.corp.test')).toBe(1);
    expect((await l.status()).cache).toMatchObject({ hits: 4, misses: 1, entries: 1 });
  });

  test('empties the cache, or the names a pattern selects, on flush --cache and leaves the entries alone', async () => {
    const { lab: l, up } = await lab();
    await l.ask('www.corp.test');
    await l.ask('db.corp.test');
    await l.ask('www.example');
    expect(await l.control_('flush', { cache: true, name: '*.corp.test' })).toEqual({ cacheRemoved: 2 });
    expect(l.d.info.registry.list().filter((e) => !e.retired)).toHaveLength(2);
    await l.ask('www.corp.test');
    await l.ask('www.example');
    expect([asked(up, 'www.corp.test'), asked(up, 'www.example')]).toEqual([2, 1]);
    expect(await l.control_('flush', { cache: true })).toEqual({ cacheRemoved: 2 });
    await l.ask('www.example');
    expect(asked(up, 'www.example')).toBe(2);
    await expect(l.control_('flush', { cache: true, channel: 'hub' })).rejects.toMatchObject({ code: 'bad_args' });
  });

  test('turns the cache off and on by a reload without losing a query when queries flow', async () => {
    const { lab: l, up } = await lab();
    const base = `upstreams: { default: 127.0.0.1:${up.port} }\n${CHANNELS}${RULES}`;
    let stop = false;
    let answered = 0;
    let lost = 0;
    const flow = (async () => {
      while (!stop) {
        try {
          if (aRecords(await l.ask('www.corp.test')).length === 1) answered++;
        } catch {
          lost++;
        }
      }
    })();
    await waitFor(() => answered > 20, 'queries answered from the cache');
    l.write(`cache_size: 0\n${base}`);
    await l.reload();
    const off = asked(up, 'www.corp.test');
    await waitFor(() => asked(up, 'www.corp.test') > off + 20, 'queries reaching the upstream with the cache off');
    l.write(base);
    await l.reload();
    const on = asked(up, 'www.corp.test');
    const n = answered;
    await waitFor(() => answered > n + 20, 'queries answered after the cache came back');
    stop = true;
    await flow;
    // back on: one miss filled it, the rest were hits
    expect(asked(up, 'www.corp.test')).toBeLessThanOrEqual(on + 1);
    expect(lost).toBe(0);
    expect((await l.status()).cache).toMatchObject({ enabled: true, entries: 1, max_entries: 10000 });
  });
});
