/**
 * The daemon in intercept mode (#6) with the fake data path, so the intercept store is the
 * memory one (no root): the real pipeline registers a protected answer's real addresses, then
 * answers with pool addresses (one per real address); unprotected answers pass unchanged; a
 * full pool means SERVFAIL; `list` over the control socket shows intercept ↔ real ↔ names ↔ group.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import type { ListRow } from '../../src/control/handlers.ts';
import type { DaemonInfo } from '../../src/daemon/index.ts';
import { buildChannel } from '../../src/policy/channel.ts';
import { parseCondition } from '../../src/policy/condition.ts';
import { ask, type Transport } from '../policy-server/helpers.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { startDaemon } from './start.ts';
import { settingDefaults } from '../../src/config/defaults.ts';

const POOL_V4 = '100.64.0.0/30'; // four addresses: 100.64.0.0 … 100.64.0.3
const POOL_V6 = 'fd7a:5ea1::/126';
const A = (name: string, data: string): dnsPacket.Answer => ({ name, type: 'A', ttl: 300, class: 'IN', data });
const AAAA = (name: string, data: string): dnsPacket.Answer => ({ name, type: 'AAAA', ttl: 300, class: 'IN', data });

/** What the fake upstream knows. */
const ZONE: Record<string, dnsPacket.Answer[]> = {
  'multi.corp.test': [A('multi.corp.test', '198.51.100.1'), A('multi.corp.test', '198.51.100.2'), A('multi.corp.test', '198.51.100.3')],
  'one.corp.test': [A('one.corp.test', '198.51.100.4')],
  'again.corp.test': [A('again.corp.test', '198.51.100.1')],
  'five.corp.test': [A('five.corp.test', '198.51.100.5')],
  'v6.corp.test': [AAAA('v6.corp.test', '2001:db8::10')],
  'www.public.test': [A('www.public.test', '203.0.113.5'), A('www.public.test', '203.0.113.6')],
};

function query(name: string, type: dnsPacket.RecordType = 'A', id = 0x1234): Uint8Array {
  return new Uint8Array(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }));
}

function decode(bytes: Uint8Array) {
  const d = dnsPacket.decode(Buffer.from(bytes)) as dnsPacket.DecodedPacket & { rcode?: string };
  const addrs = (d.answers ?? []).flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [String(r.data)] : []));
  return { rcode: d.rcode, addrs };
}

function config(upstreamPort: number, control: string): Config {
  return {
    ...settingDefaults(),
    source: '<test>',
    mode: 'intercept',
    listen: ['127.0.0.1:0'],
    upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: upstreamPort }] }],
    datapath: 'fake',
    lan: ['lan0'],
    wan: [],
    control,
    logLevel: 'error',
    logFormat: 'logfmt',
    minHoldS: 60,
    idleS: 300,
    upstreamTimeoutMs: 1000,
    canary: 'nxdomain',
    channels: [buildChannel('hub', { kind: 'tunnel', gateway: '192.0.2.1', esp: 'aes256gcm16' }, 1)],
    tables: [{ id: 'default', group: 0, rules: [{ condition: parseCondition('*.corp.test'), channel: 'hub', index: 0, source: 'test' }] }],
    clients: [],
    statics: [],
    tsigKeys: [],
    interceptPools: [POOL_V4, POOL_V6],
  };
}

const inPool4 = (a: string) => /^100\.64\.0\.[0-3]$/.test(a);

describe('daemon/intercept', () => {
  let upstream: FakeUpstream;
  let dir: string;
  let control: string;
  let info: DaemonInfo;
  let port: number;
  let exit: Promise<number>;
  const signals = new EventEmitter();
  const resolve = async (name: string, type: dnsPacket.RecordType = 'A', t: Transport = 'udp') => decode(await ask(t, port, query(name, type), '127.0.0.1', 3000));

  beforeAll(async () => {
    upstream = await FakeUpstream.start((q, t) => t.answerFor(q, { answers: ZONE[q.name.toLowerCase()] ?? [] }));
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-icpt-'));
    control = join(dir, 'control.sock');
    const cfg = config(upstream.port, control);
    ({ info, exit } = await startDaemon(cfg, { signals }));
    port = info.listeners.find((l) => l.transport === 'udp')!.port;
  });

  afterAll(async () => {
    signals.emit('SIGTERM');
    await exit;
    upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers an unprotected name with the real addresses, unchanged, when it matches no rule', async () => {
    const r = await resolve('www.public.test');
    expect(r).toEqual({ rcode: 'NOERROR', addrs: ['203.0.113.5', '203.0.113.6'] });
  });

  test('gives each of several A records its own pool address and registers the real ones when the name is protected', async () => {
    const r = await resolve('multi.corp.test');
    expect(r.rcode).toBe('NOERROR');
    expect(r.addrs).toHaveLength(3);
    expect(r.addrs.every(inPool4)).toBe(true);
    expect(new Set(r.addrs).size).toBe(3);
    // none of the real addresses reaches the client; all of them are in the kernel map
    expect(r.addrs.some((a) => a.startsWith('198.51.100.'))).toBe(false);
    expect(info.registry.list().map((e) => e.addr).sort()).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
  });

  test('keeps the same pool address for a real address while its mapping lives, over TCP too', async () => {
    const first = await resolve('multi.corp.test', 'A', 'tcp');
    const again = await resolve('again.corp.test');
    const rows = (await controlRequest(control, { cmd: 'list' })) as ListRow[];
    const of198_1 = rows.find((x) => x.address === '198.51.100.1')!.intercept;
    expect(again.addrs).toEqual([of198_1!]);
    expect(first.addrs).toContain(of198_1!);
  });

  test('answers an AAAA for a protected name from the IPv6 pool', async () => {
    const r = await resolve('v6.corp.test', 'AAAA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.addrs).toHaveLength(1);
    expect(r.addrs[0]).toMatch(/^fd7a:5ea1::[0-3]?$/);
  });

  test('lists intercept, real address, names and group when asked over the control socket', async () => {
    const rows = (await controlRequest(control, { cmd: 'list' })) as ListRow[];
    const row = rows.find((x) => x.address === '198.51.100.2')!;
    expect(row).toMatchObject({ group: 0, channel: 'hub', names: ['multi.corp.test'] });
    expect(inPool4(row.intercept!)).toBe(true);
    expect(rows.filter((x) => x.address.startsWith('198.51.100.')).every((x) => x.intercept && inPool4(x.intercept))).toBe(true);
  });

  test('answers SERVFAIL, never a reused address, when the pool is exhausted', async () => {
    const fourth = await resolve('one.corp.test');
    expect(fourth.rcode).toBe('NOERROR');
    expect(fourth.addrs.every(inPool4)).toBe(true);
    const servfails = info.counters.servfail.intercept;
    const fifth = await resolve('five.corp.test');
    expect(fifth).toEqual({ rcode: 'SERVFAIL', addrs: [] });
    expect(info.counters.servfail.intercept).toBe(servfails + 1);
    // unprotected names are still answered
    expect((await resolve('www.public.test')).addrs).toEqual(['203.0.113.5', '203.0.113.6']);
  });
});
