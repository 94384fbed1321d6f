/**
 * The daemon exports the kernel's XFRM counters when its IPsec backend is strongSwan (the only
 * case in which dnsseal has XFRM policies that drop) and not with the `none` backend: an
 * in-process daemon (fake data path, loopback listener) against a FakeCharon.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import { runDaemon, type DaemonInfo, type SignalSource } from '../../src/daemon/index.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { XFRM_STAT_PATH } from '../../src/ops/xfrm-stat.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { deps } from '../config/fixtures.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function daemonMetrics(datapath: 'ebpf' | 'none'): Promise<Metrics> {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-xfrmd-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const fake = await FakeCharon.start(join(dir, 'charon.vici'));
  cleanup.push(() => fake.stop());
  const cfg = loadConfigText(
    [
      `listen: [127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}]`,
      'upstreams: { default: 127.0.0.1:9 }',
      `datapath: ${datapath}`, // ebpf: deps.ebpf stands in, and the factory picks strongSwan
      `control: ${join(dir, 'control.sock')}`,
      `vici_socket: ${fake.socketPath}`,
      'channels:',
      '  p: { kind: peer }',
      'tables:',
      '  default:',
      '    - { match: "*.p.example", channel: p }',
      '',
    ].join('\n'),
    join(dir, 'dnsseal.yaml'),
    new Map(),
    deps(),
  );
  const metrics = new Metrics();
  const signals = new EventEmitter();
  const { promise: ready, resolve } = Promise.withResolvers<DaemonInfo>();
  const done = runDaemon(cfg, {
    log: silentLogger,
    clock: realClock,
    metrics,
    signals: signals as unknown as SignalSource,
    ebpf: () => new FakeDatapath({ clock: realClock }),
    onReady: resolve,
  });
  const started = await Promise.race([ready.then(() => true), done.then(() => false)]);
  expect(started).toBe(true);
  cleanup.push(async () => {
    signals.emit('SIGTERM');
    await done;
  });
  return metrics;
}

describe('daemon: xfrm counters', () => {
  test('exports dnsseal_xfrm_errors_total when the IPsec backend is strongSwan', async () => {
    const text = (await daemonMetrics('ebpf')).expose();
    if (!existsSync(XFRM_STAT_PATH)) {
      console.log(`${XFRM_STAT_PATH} is absent (kernel without XFRM): checking that nothing is exported`);
      expect(text).not.toContain('dnsseal_xfrm_errors_total');
      return;
    }
    expect(text).toContain('# TYPE dnsseal_xfrm_errors_total counter');
    expect(text).toMatch(/\ndnsseal_xfrm_errors_total\{counter="XfrmOutNoStates"\} \d+\n/);
  });

  test('does not export it when there is no IPsec backend (datapath none)', async () => {
    const text = (await daemonMetrics('none')).expose();
    expect(text).not.toContain('dnsseal_xfrm_errors_total');
  });
});
