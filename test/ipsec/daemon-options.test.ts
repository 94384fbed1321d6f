/**
 * The daemon hands `vici_socket` and `local_id` (and the LAN selectors) to the IPsec channels:
 * an in-process daemon (fake data path, loopback listener) against a FakeCharon on its own
 * socket. The tunnel charon is given carries our identity and the right local selectors; a
 * gateway whose LAN interface has no usable address does not start, and says why.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import { runDaemon, type DaemonInfo, type SignalSource } from '../../src/daemon/index.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { createLogger } from '../../src/util/log.ts';
import { deps } from '../config/fixtures.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function daemonWith(extra: string) {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-dopt-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const fake = await FakeCharon.start(join(dir, 'charon.vici'));
  cleanup.push(() => fake.stop());
  const cfg = loadConfigText(
    [
      `listen: [127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}]`,
      'upstreams: { default: 127.0.0.1:9 }',
      'datapath: ebpf', // deps.ebpf stands in; IPsec is the real factory's choice (strongSwan)
      `control: ${join(dir, 'control.sock')}`,
      `vici_socket: ${fake.socketPath}`,
      'channels:',
      '  hub: { kind: tunnel, gateway: 192.0.2.1, identity: hub.test }',
      'tables:',
      '  default:',
      '    - { match: "*.corp.example", channel: hub }',
      extra,
      '',
    ].join('\n'),
    join(dir, 'dnsseal.yaml'),
    new Map(),
    deps(),
  );
  const lines: string[] = [];
  const signals = new EventEmitter();
  const { promise: ready, resolve } = Promise.withResolvers<DaemonInfo>();
  const done = runDaemon(cfg, {
    log: createLogger({ level: 'info', write: (l: string) => void lines.push(l) }),
    clock: realClock,
    metrics: new Metrics(),
    signals: signals as unknown as SignalSource,
    ebpf: () => new FakeDatapath({ clock: realClock }),
    onReady: resolve,
  });
  const started = await Promise.race([ready.then(() => true), done.then(() => false)]);
  if (started) {
    cleanup.push(async () => {
      signals.emit('SIGTERM');
      await done;
    });
  }
  return { fake, started, done, lines };
}

describe('daemon: ipsec options', () => {
  test('loads the tunnel on the configured VICI socket with our identity when local_id is set', async () => {
    const d = await daemonWith('mode: host\nlocal_id: router.corp.example');
    expect(d.started).toBe(true);
    const conn = d.fake.conns.get(tunnelConnName({ name: 'hub' } as never)) as any;
    expect(conn).toBeDefined();
    expect(conn.local.id).toBe('router.corp.example');
    expect(conn.children['dnsseal-tunnel-hub'].local_ts).toEqual(['dynamic']);
    expect(d.fake.installed.has('dnsseal-tunnel-hub')).toBe(true);
  });

  test('loads the explicit selectors when local_ts is set in gateway mode', async () => {
    const d = await daemonWith('mode: gateway\nlan: [lo]\nlocal_ts: [10.9.0.0/16, "fd00:9::/64"]');
    expect(d.started).toBe(true);
    const conn = d.fake.conns.get('dnsseal-tunnel-hub') as any;
    expect(conn.children['dnsseal-tunnel-hub'].local_ts).toEqual(['10.9.0.0/16', 'fd00:9::/64']);
    expect(conn.local.id).toBeUndefined(); // no local_id: charon's default
  });

  test('does not start and names the interface when the LAN interface has no usable address', async () => {
    const d = await daemonWith('mode: gateway\nlan: [lo]'); // lo: host-scope addresses only
    expect(d.started).toBe(false);
    expect(await d.done).toBe(1);
    expect(d.lines.join('\n')).toContain('LAN interface lo has no global address');
    expect(d.fake.conns.size).toBe(0);
  });
});
