/**
 * Channels reloaded live in strongSwan (issue 12): with the real IPsec back end talking VICI to
 * a FakeCharon and the fake data path standing in for eBPF, one reload adds a tunnel channel
 * (loaded and trapped before the reply), changes one (its connection replaced), removes one
 * (unloaded, its entries retired, never dropped into the clear) — and leaves the unchanged one
 * alone: its connection is not loaded again, its SA stays up, its id and mark stay, and its
 * names keep being answered while the reload runs. Loopback only.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { addressOf, ask, freePort, QueryFlow, reloadLab, until, type ReloadLab } from './reload-lab.ts';

const conn = (name: string) => tunnelConnName({ name } as ChannelSpec);

function yaml(listen: number, vici: string, channels: Record<string, string>, rules: Record<string, string>) {
  return (upstream: number, control: string) =>
    [
      'mode: host',
      `listen: [127.0.0.1:${listen}]`,
      `upstreams: { default: 127.0.0.1:${upstream} }`,
      'datapath: ebpf', // the FakeDatapath stands in for the eBPF backend
      `vici_socket: ${vici}`,
      `control: ${control}`,
      'channels:',
      ...Object.entries(channels).map(([n, gw]) => `  ${n}: { kind: tunnel, gateway: ${gw}, esp: aes256gcm16 }`),
      'tables:',
      '  default:',
      ...Object.entries(rules).map(([m, ch]) => `    - { match: "${m}", channel: ${ch} }`),
      '',
    ].join('\n');
}

describe('daemon/reload of channels in strongSwan', () => {
  let lab: ReloadLab;
  let charon: FakeCharon;
  let port: number;
  let vici: string;
  const dp = new FakeDatapath({ clock: realClock });
  // `old` first: dropping it would renumber the others if ids were not kept by name
  const BEFORE = { old: '192.0.2.5', hub: '192.0.2.1', lab: '192.0.2.3' };
  const RULES_BEFORE = { '*.corp.test': 'hub', '*.lab.test': 'lab', '*.old.test': 'old' };

  beforeAll(async () => {
    port = await freePort();
    vici = `/tmp/dnsseal-reload-charon-${process.pid}.vici`;
    charon = await FakeCharon.start(vici);
    lab = await reloadLab(yaml(port, vici, BEFORE, RULES_BEFORE), { ebpf: () => dp, ipsec: undefined });
    await until('the tunnels up in charon', () => ['hub', 'lab', 'old'].every((n) => charon.sas.get(conn(n))?.state === 'ESTABLISHED'));
  });

  afterAll(async () => {
    await lab?.stop();
    await charon?.stop();
  });

  test('loads a new channel, replaces a changed one, unloads a removed one and leaves the unchanged one alone', async () => {
    for (const n of ['app.corp.test', 'x.lab.test', 'y.old.test']) expect((await ask(port, n)).rcode).toBe('NOERROR');
    const entry = (name: string) => lab.d.info.registry.list().find((e) => e.names.includes(name));
    const hubConn = charon.conns.get(conn('hub'));
    const hubSa = charon.sas.get(conn('hub'))!.uniqueid;
    const hubAddr = entry('app.corp.test')!.addr;
    const inMap = (addr: string) => dp.list().find((e) => e.key.addr === addr)?.value;
    const hubValue = inMap(hubAddr)!;
    const commands = charon.commands.length;

    const flow = new QueryFlow(port, ['app.corp.test', 'www.public.test']);
    await until('queries flowing', () => flow.count > 20);
    lab.write(
      yaml(port, vici, { hub: BEFORE.hub, lab: '192.0.2.4', extra: '192.0.2.9' }, { '*.corp.test': 'hub', '*.lab.test': 'lab', '*.extra.test': 'extra' })(lab.upstream.port, lab.control),
    );
    const r = await lab.reload();
    const answered = flow.count;
    await until('queries answered after the reload', () => flow.count > answered + 20);
    const f = await flow.stop();

    expect(r).toMatchObject({ applied: ['channels', 'tables'], restartNeeded: [], channelsLoaded: 1, channelsReplaced: 1, channelsUnloaded: 1 });
    // the new one: loaded and trapped before the reply
    expect(charon.installed.has(conn('extra'))).toBe(true);
    // the changed one: its connection now goes to the new gateway
    expect(charon.conns.get(conn('lab'))?.remote_addrs).toEqual(['192.0.2.4']);
    expect(charon.installed.has(conn('lab'))).toBe(true);
    // the removed one: unloaded, its entry retired (still in the map, not live)
    expect(charon.conns.has(conn('old'))).toBe(false);
    expect(entry('y.old.test')).toBeUndefined();
    expect(lab.d.info.registry.list().find((e) => e.addr === addressOf('y.old.test'))?.retired).toBe(true);
    // the unchanged one: not loaded again, its SA still the same, its entry's id and mark kept
    expect(charon.conns.get(conn('hub'))).toBe(hubConn);
    expect(charon.sas.get(conn('hub'))?.uniqueid).toBe(hubSa);
    expect(charon.commands.slice(commands).filter((c) => c === 'load-conn').length).toBe(2); // extra, lab
    expect(entry('app.corp.test')).toMatchObject({ channel: 'hub', addr: hubAddr });
    expect(inMap(hubAddr)).toMatchObject({ channelId: hubValue.channelId, mark: hubValue.mark });
    expect(dp.channels.find((c) => c.id === hubValue.channelId)?.mark).toBe(hubValue.mark);
    // the new channel's id is one no channel had: the removed one's retired entries keep theirs
    const ids = dp.channels.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(f.answered).toBe(f.sent);
    expect(f.rcodes).toEqual({ NOERROR: f.sent });
    // the new channel protects its names
    expect((await ask(port, 'z.extra.test')).rcode).toBe('NOERROR');
    expect(entry('z.extra.test')?.channel).toBe('extra');
  });

  test('refuses the reload, and unloads the new tunnels again, when charon refuses one', async () => {
    const before = [...charon.conns.keys()].sort();
    charon.refuseConn = (name) => (name === conn('bad') ? 'invalid value for: remote_addrs, config discarded' : null);
    const chans = { hub: BEFORE.hub, lab: '192.0.2.4', extra: '192.0.2.9', more: '192.0.2.10', bad: '192.0.2.77' };
    lab.write(yaml(port, vici, chans, { '*.corp.test': 'hub', '*.lab.test': 'lab', '*.extra.test': 'extra', '*.more.test': 'more', '*.bad.test': 'bad' })(lab.upstream.port, lab.control));
    const err = await lab.refused();
    expect(err.code).toBe('reload_invalid');
    expect(err.message).toContain('channel bad: strongSwan refused the tunnel: vici: load-conn failed: invalid value for: remote_addrs');
    await until('the tunnel loaded for the refused reload unloaded again', () => !charon.conns.has(conn('more')));
    expect([...charon.conns.keys()].sort()).toEqual(before);
    expect((await lab.status()).channels).toHaveLength(3);
    charon.refuseConn = () => null;
  });
});
