/**
 * Why server channel ids are derived from the channel (#5): pinned entries outlive the daemon.
 * After a restart the registry adopts them by channel id; when the policy server names the
 * channel again, in whatever order, the id must be the one the adopted entry carries, so the
 * answer is taken (no channel conflict) and the kernel value keeps its mark.
 */
import { describe, expect, test } from 'bun:test';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import type { PolicyChannel } from '../../src/dns/policy-option.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { ServerChannels } from '../../src/policy-server/proxy-side.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { Registry } from '../../src/registry/registry.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

const HUB_A: PolicyChannel = { name: 'hub-a', kind: 'tunnel', identity: 'hub-a.nec.example', esp: 'aes256gcm16', gateway: '192.0.2.1' };
const PEER_B: PolicyChannel = { name: 'peer-b', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' };

/** One daemon run over the "pinned" map `dp`: registry adopted from it, server channels fresh. */
function run(dp: FakeDatapath, clock: FakeClock) {
  const registry = new Registry({ datapath: dp, clock, log: silentLogger, metrics: new Metrics(), minHoldMs: 60_000, idleMs: 60_000, channels: [] });
  registry.adopt();
  const channels: ServerChannels = new ServerChannels(() => registry.setChannels(channels.list()));
  const reg = (spec: ChannelSpec, addr: string, name: string) => registry.register({ group: 502, channel: spec, names: [name], addrs: [addr], ttlS: 300, queryName: name });
  return { registry, channels, reg };
}

describe('policy-server/proxy-side server channels across a restart', () => {
  test('an adopted entry is taken again under its channel when the server names channels in another order after a restart', async () => {
    const dp = new FakeDatapath();
    const clock = new FakeClock();
    const first = run(dp, clock);
    await first.reg(first.channels.resolve(HUB_A), '198.51.100.7', 'kojima.jinji.nec.com');
    await first.reg(first.channels.resolve(PEER_B), '198.51.100.8', 'kojima.partner.example');
    const before = dp.list().map((e) => [e.key.addr, e.value.channelId, e.value.mark]);

    // Restart: the map stays; this run happens to hear of peer-b first.
    const second = run(dp, clock);
    // Adopted by id only (the server has not named anything yet in this run).
    expect(second.registry.list().every((e) => /^#[0-9]+$/.test(e.channel))).toBe(true);
    const peer = second.channels.resolve(PEER_B);
    const hub = second.channels.resolve(HUB_A);
    // Named again: the adopted entries follow by id, and registering them again is no conflict.
    expect(second.registry.list().map((e) => [e.addr, e.channel]).sort()).toEqual([
      ['198.51.100.7', 'server:hub-a'],
      ['198.51.100.8', 'server:peer-b'],
    ]);
    await second.reg(hub, '198.51.100.7', 'kojima.jinji.nec.com');
    await second.reg(peer, '198.51.100.8', 'kojima.partner.example');
    expect(dp.list().map((e) => [e.key.addr, e.value.channelId, e.value.mark])).toEqual(before);
  });
});
