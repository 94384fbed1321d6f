/**
 * The cache in the real pipeline with the real registry (fake data path, fake clock): a hit is
 * registered exactly as a fresh answer is, for the asking client's group, before it is
 * released — the bug dnsmasq/SmartDNS nftset users met (the set entry expires or is flushed
 * while the resolver cache keeps answering) cannot happen here. The registry retires an entry
 * whose hold ran out (or that was flushed) instead of removing it; a hit brings it back to live.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { AnswerCache, type AnswerCacheOptions } from '../../src/cache/answer-cache.ts';
import { CachingForwarder } from '../../src/cache/caching-forwarder.ts';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import type { Decision } from '../../src/policy/types.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import type { ClientInfo } from '../../src/proxy/handler.ts';
import { Pipeline, type PolicyApi } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { silentLogger } from '../../src/util/log.ts';
import { fixture } from '../dns/fixtures.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import type { FakeDatapath } from '../../src/datapath/fake.ts';
import { HUB, MIN_HOLD_MS, rig } from '../registry/helpers.ts';

/** front.test → app.corp.test → www.corp.test A 203.0.113.10, every TTL 300 (the knot capture). */
const PROTECTED = 'front.test';
const ADDR = '203.0.113.10';
const TTL_MS = 300_000;

/** Protects *.corp.test; the client's last octet is its group (its own table). */
class GroupPolicy implements PolicyApi {
  decide(clientIp: string, names: string[]): Decision {
    const group = Number(clientIp.split('.').pop());
    const matched = names.find((n) => n.endsWith('.corp.test'));
    return { table: `t${group}`, group, rule: null, channel: matched ? HUB : null, upstream: null, ...(matched ? { matchedName: matched } : {}) };
  }
  preDecide(): Decision {
    return { table: 't', group: 0, rule: null, channel: null, upstream: null };
  }
}

/** Answers from the knot captures; counts calls; fails when told. */
class CapturedUpstream {
  calls = 0;
  fail: UpstreamError | null = null;
  async forward(q: ParsedQuery): Promise<Forwarded> {
    this.calls++;
    if (this.fail) throw this.fail;
    const file = { 'front.test': 'front-a', 'www.test': 'www-a' }[q.qname]!;
    const { answer } = fixture(file);
    return { bytes: answer, scan: scanAnswer(answer, q.question.length, q.qname), via: 'udp' };
  }
}

/** Map entries by state: `live` ones steer into their channel on an answer's hold, `retired` ones outlived it. */
function mapIn(dp: FakeDatapath): { live: string[]; retired: string[] } {
  const out = { live: [] as string[], retired: [] as string[] };
  for (const e of dp.list()) out[e.value.flags & DEST_F_RETIRED ? 'retired' : 'live'].push(`${e.key.group}/${e.key.addr}`);
  out.live.sort();
  out.retired.sort();
  return out;
}

const client = (group: number): ClientInfo => ({ address: `10.0.0.${group}`, port: 5353, transport: 'udp' });

function setup(cacheOpts: Partial<AnswerCacheOptions> = {}) {
  const r = rig({ minHoldMs: MIN_HOLD_MS });
  const events: string[] = [];
  const upsert = r.dp.upsert.bind(r.dp);
  r.dp.upsert = (key, value) => {
    upsert(key, value);
    events.push(`map ${key.group}/${key.addr}`);
  };
  const upstream = new CapturedUpstream();
  const cache = new AnswerCache({ clock: r.clock, ...cacheOpts });
  const counters = newProxyCounters();
  const pipeline = new Pipeline({
    policy: new GroupPolicy(),
    registry: r.registry,
    forwarder: new CachingForwarder(upstream, cache),
    upstreamNames: ['default'],
    counters,
    log: silentLogger,
    canary: 'nxdomain',
  });
  /** Asks `name` as client `group`; notes when the answer is released. */
  const ask = async (name: string, group = 1) => {
    const out = await pipeline.handle(clientQuery(name, 1, false, 0x4242), client(group));
    events.push(`answer ${group}`);
    return dnsPacket.decode(Buffer.from(out!)) as dnsPacket.DecodedPacket & { rcode: string };
  };
  return { ...r, events, upstream, cache, counters, ask };
}

const aRecords = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).filter((x) => x.type === 'A') as Array<{ data: string; ttl: number }>;

describe('cache/pipeline', () => {
  test('brings a flushed entry back to live in the map before the hit is released when the cache still holds the answer', async () => {
    const { ask, registry, dp, events, upstream, clock } = setup();
    await ask(PROTECTED);
    registry.withdraw(() => true); // `dnsseal flush`, a reload, an nft flush in the peers' story
    expect(mapIn(dp)).toEqual({ live: [], retired: [`1/${ADDR}`] });
    clock.advance(100_000);
    events.length = 0;
    const out = await ask(PROTECTED);
    expect(upstream.calls).toBe(1);
    expect(mapIn(dp)).toEqual({ live: [`1/${ADDR}`], retired: [] });
    expect(registry.get(1, ADDR)!.expiresMs).toBe(clock.monoMs() + 200_000);
    expect(events).toEqual([`map 1/${ADDR}`, 'answer 1']);
    expect(aRecords(out)).toEqual([expect.objectContaining({ data: ADDR, ttl: 200 })]);
  });

  test('registers a hit for the asking client\'s own group when another group filled the cache', async () => {
    const { ask, dp, upstream, events } = setup();
    await ask(PROTECTED, 1);
    events.length = 0;
    await ask(PROTECTED, 2);
    expect(upstream.calls).toBe(1);
    expect(mapIn(dp)).toEqual({ live: [`1/${ADDR}`, `2/${ADDR}`], retired: [] });
    expect(events).toEqual([`map 2/${ADDR}`, 'answer 2']);
  });

  test('keeps the entry alive past its first hold when a hit near the end of the TTL refreshes it', async () => {
    const { ask, registry, dp, clock, upstream } = setup();
    const t0 = clock.monoMs();
    await ask(PROTECTED);
    expect(registry.get(1, ADDR)!.expiresMs).toBe(t0 + TTL_MS);
    clock.advance(290_000);
    const out = await ask(PROTECTED);
    expect(aRecords(out)[0]!.ttl).toBe(10);
    // The hit registered the remaining 10 s, floored by min_hold: held until 290 + 60.
    expect(registry.get(1, ADDR)!.expiresMs).toBe(t0 + 290_000 + MIN_HOLD_MS);
    clock.advance(30_000); // 320 s: the first hold ran out 20 s ago, and no packet was seen
    registry.gc();
    expect(mapIn(dp)).toEqual({ live: [`1/${ADDR}`], retired: [] });
    expect(registry.get(1, ADDR)!.retired).toBeUndefined();
    expect(upstream.calls).toBe(1);
  });

  test('brings the entry back to live for a stale answer served after the first hold ran out and the upstream is down', async () => {
    const { ask, registry, dp, clock, upstream, cache } = setup({ staleMaxS: 3600 });
    await ask(PROTECTED);
    clock.advance(400_000);
    registry.gc();
    expect(mapIn(dp)).toEqual({ live: [], retired: [`1/${ADDR}`] });
    upstream.fail = new UpstreamError('timeout', 'upstream: timeout');
    const out = await ask(PROTECTED);
    expect(out.rcode).toBe('NOERROR');
    expect(aRecords(out)).toEqual([expect.objectContaining({ data: ADDR, ttl: 30 })]);
    expect(cache.counters.stale).toBe(1);
    expect(mapIn(dp)).toEqual({ live: [`1/${ADDR}`], retired: [] });
    expect(registry.get(1, ADDR)!.expiresMs).toBe(clock.monoMs() + MIN_HOLD_MS);
  });

  test('answers SERVFAIL and never the cached addresses when a hit cannot be registered', async () => {
    const { ask, dp, counters, cache } = setup();
    await ask(PROTECTED);
    dp.unhealthy = 'pins removed';
    const out = await ask(PROTECTED);
    expect(cache.counters.hits).toBe(1);
    expect(out.rcode).toBe('SERVFAIL');
    expect(out.answers).toEqual([]);
    expect(counters.servfail.register).toBe(1);
  });

  test('answers an unprotected hit from the cache and registers nothing', async () => {
    const { ask, dp, upstream, cache } = setup();
    await ask('www.test');
    const out = await ask('www.test');
    expect(upstream.calls).toBe(1);
    expect(cache.counters.hits).toBe(1);
    expect(aRecords(out)[0]!.data).toBe('192.0.2.10');
    expect(dp.list()).toEqual([]);
  });
});
