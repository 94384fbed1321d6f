import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { decodePolicyOption } from '../../src/dns/policy-option.ts';
import { stripTsig } from '../../src/dns/tsig.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { encodeClientSubnet } from '../../src/policy-server/client-subnet.ts';
// 32768 + FNV-1a 32 of the canonical spec mod 32767 (see server-channels.test.ts).
const HUB_A_ID = 41736;
import {
  CLIENT_502,
  CLIENT_503,
  CLIENT_504,
  GW_KEY,
  KOJIMA,
  KOJIMA_ADDR,
  ProxySide,
  ask,
  figure6State,
  makeQuery,
  serve,
  startServer,
  type Served,
  type Transport,
} from './helpers.ts';

const clock = new FakeClock(1_795_554_523_000);
let served: Served;

beforeAll(async () => {
  served = await serve(startServer(figure6State(), clock).handle);
});
afterAll(async () => served.close());

const port = (t: Transport) => (t === 'udp' ? served.udp.port : served.tcp.port);

describe('policy-server figure 6', () => {
  test.each<Transport>(['udp', 'tcp'])('gives each of three clients its own table when they ask for kojima.jinji.nec.com over %s', async (t) => {
    const p502 = new ProxySide(clock, CLIENT_502);
    const p503 = new ProxySide(clock, CLIENT_503);
    const p504 = new ProxySide(clock, CLIENT_504);
    const [v502, v503, v504] = await Promise.all([p502.query(t, port(t), KOJIMA), p503.query(t, port(t), KOJIMA), p504.query(t, port(t), KOJIMA)]);

    expect(v502.ok && v502.annotation).toEqual({
      version: 1,
      node: 'host',
      table: '502',
      group: 502,
      channel: { name: 'hub-a', kind: 'tunnel', identity: 'hub-a.nec.example', esp: 'aes256gcm16', gateway: '192.0.2.1' },
    });
    expect(v503.ok && v503.annotation).toEqual({
      version: 1,
      node: 'host',
      table: '503',
      group: 503,
      channel: { name: 'peer-b', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' },
    });
    expect(v504.ok && v504.annotation).toEqual({ version: 1, node: 'host', table: '504', group: 504, channel: null });

    // Each proxy's registry shows exactly its decision.
    expect(p502.registrations).toHaveLength(1);
    expect(p502.registrations[0]).toMatchObject({ group: 502, addrs: [KOJIMA_ADDR], channel: { name: 'server:hub-a', kind: 'tunnel', gateway: '192.0.2.1', esp: 'aes256gcm16', id: HUB_A_ID } });
    expect(p503.registrations).toHaveLength(1);
    expect(p503.registrations[0]).toMatchObject({ group: 503, addrs: [KOJIMA_ADDR], channel: { name: 'server:peer-b', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' } });
    expect(p504.registrations).toEqual([]);
  });

  test.each<Transport>(['udp', 'tcp'])('decides on the CNAME chain when the query name is an alias over %s', async (t) => {
    const p = new ProxySide(clock, CLIENT_503);
    const v = await p.query(t, port(t), 'alias.jinji.nec.com');
    expect(v.ok && v.annotation?.channel?.name).toBe('peer-b');
    expect(p.registrations[0]?.addrs).toEqual([KOJIMA_ADDR]);
  });

  test.each<Transport>(['udp', 'tcp'])('uses the client subnet when a trusted gateway key signs over %s', async (t) => {
    // The gateway sits at 127.0.0.4 (table 504, no match) and speaks for its LAN client 127.0.0.2.
    const gw = new ProxySide(clock, CLIENT_504, GW_KEY.name);
    const v = await gw.query(t, port(t), KOJIMA, { ecs: encodeClientSubnet(Uint8Array.from([127, 0, 0, 2]), 32) });
    expect(v.ok && v.annotation).toMatchObject({ node: 'gateway', table: '502', channel: { name: 'hub-a' } });
  });

  test.each<Transport>(['udp', 'tcp'])('ignores the client subnet when the signing key is not trusted for it over %s', async (t) => {
    const p = new ProxySide(clock, CLIENT_504);
    const v = await p.query(t, port(t), KOJIMA, { ecs: encodeClientSubnet(Uint8Array.from([127, 0, 0, 2]), 32) });
    expect(v.ok && v.annotation).toMatchObject({ node: 'host', table: '504', channel: null });
    expect(p.registrations).toEqual([]);
  });

  test.each<Transport>(['udp', 'tcp'])('answers an unsigned query normally and without annotation over %s', async (t) => {
    const answer = await ask(t, port(t), makeQuery(KOJIMA), CLIENT_502);
    expect(decodePolicyOption(answer)).toBeNull();
    expect(stripTsig(answer)).toEqual(answer); // no TSIG either
    expect(answer[3]! & 0x0f).toBe(0);
  });

  test('answers NXDOMAIN signed when the name is in the zone but unknown', async () => {
    const p = new ProxySide(clock, CLIENT_502);
    const v = await p.query('udp', served.udp.port, 'nobody.jinji.nec.com');
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.unsigned[3]! & 0x0f).toBe(3);
    expect(p.registrations).toEqual([]);
  });

  test('answers REFUSED signed when the name is outside the zone and there is no upstream', async () => {
    const p = new ProxySide(clock, CLIENT_502);
    const v = await p.query('udp', served.udp.port, 'www.example.org');
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.unsigned[3]! & 0x0f).toBe(5);
  });
});

describe('policy-server gateway client subnet', () => {
  test.each<[Transport, string, string, string | null]>([
    ['udp', 'lan-gateway', '503', 'peer-b'],
    ['tcp', 'lan-gateway', '503', 'peer-b'],
    ['udp', 'dnsseal-test', '504', null],
    ['tcp', 'dnsseal-test', '504', null],
  ])('applies the LAN client table only for a trusted key when a gateway sends ECS over %s with key %s', async (t, keyName, table, channel) => {
    const { PolicyExchange, ServerChannels } = await import('../../src/policy-server/proxy-side.ts');
    const { keyring } = await import('./helpers.ts');
    // The gateway sits at 127.0.0.4 and forwards for its LAN client 127.0.0.3.
    const ex = new PolicyExchange({ keyring, keyName, clock, channels: new ServerChannels() }, CLIENT_503);
    const wire = ex.sign(makeQuery(KOJIMA));
    expect(ex.accept(await ask(t, port(t), wire, CLIENT_504))).toBe(true);
    expect(ex.verdict?.annotation).toMatchObject({ node: channel ? 'gateway' : 'host', table, ...(channel ? { channel: { name: channel } } : { channel: null }) });
  });
});

describe('policy-server policyServerLink', () => {
  test('gives fresh hooks per attempt and reads the verified decision when used by a pipeline', async () => {
    const { policyServerLink, ServerChannels } = await import('../../src/policy-server/proxy-side.ts');
    const { keyring } = await import('./helpers.ts');
    const link = policyServerLink({ keyring, keyName: GW_KEY.name, clock, channels: new ServerChannels() }, 'policy', { sendClientSubnet: true });
    expect(link.upstream).toBe('policy');
    const h1 = link.hooks(CLIENT_502);
    expect(link.hooks(CLIENT_502)).not.toBe(h1);
    expect(link.decisionOf(h1)).toBeNull(); // nothing accepted yet
    expect(link.decisionOf({})).toBeNull(); // foreign hooks
    expect(h1.accept(await ask('udp', port('udp'), h1.sign(makeQuery(KOJIMA)), CLIENT_504))).toBe(true);
    expect(link.decisionOf(h1)).toMatchObject({ table: '502', group: 502, channel: { name: 'server:hub-a', kind: 'tunnel' } });
  });
});
