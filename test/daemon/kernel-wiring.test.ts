/**
 * What the daemon hands the kernel besides entries: the client → group table (figure 6's
 * table 501, so gateway-mode marking finds each client's entries), at start and on reload;
 * and `down` over the control socket: the daemon replies, stops, then removes kernel state.
 * Fake datapath and no IPsec: no root needed; loopback only.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import { controlRequest } from '../../src/control/client.ts';
import { runDaemon, type DaemonInfo, type SignalSource } from '../../src/daemon/index.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { createLogger } from '../../src/util/log.ts';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A port per daemon: the config refuses port 0, and tests in one run must not collide. */
const port = () => 20000 + Math.floor(Math.random() * 20000);

function configText(control: string, clients: string, listenPort: number): string {
  return [
    'mode: gateway',
    'lan: [lo]',
    `listen: [127.0.0.1:${listenPort}]`,
    'trusted_forwarders: [127.0.0.1/32]', // clients reach a loopback listener through a forwarder
    'upstreams: { default: 127.0.0.1:9 }',
    'datapath: ebpf', // the test's FakeDatapath stands in for the eBPF backend (deps.ebpf)
    `control: ${control}`,
    'log_level: error',
    'channels:',
    '  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }',
    'clients:',
    clients,
    'tables:',
    '  default:',
    '    - { match: "*.corp.example", channel: hub }',
    '  "502":',
    '    - { match: "*.jinji.nec.com", channel: hub }',
    '  "503":',
    '    - { match: "kojima.*", channel: hub }',
    '',
  ].join('\n');
}

async function start(clients: string, kernelDown?: () => Promise<string[]>) {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-kw-'));
  dirs.push(dir);
  const file = join(dir, 'dnsseal.yaml');
  const control = join(dir, 'control.sock');
  const listenPort = port();
  writeFileSync(file, configText(control, clients, listenPort));
  const args = new Map([['config', [file]]]);
  const cfg = loadConfig(args, fileDeps);
  const dp = new FakeDatapath({ clock: realClock });
  const signals = new EventEmitter() as unknown as SignalSource;
  const { promise: ready, resolve } = Promise.withResolvers<DaemonInfo>();
  const done = runDaemon(cfg, {
    log: createLogger({ level: 'error', write: () => {} }),
    clock: realClock,
    metrics: new Metrics(),
    signals,
    ebpf: () => dp,
    ipsec: new NoIpsec(),
    onReady: resolve,
    reloadConfig: () => loadConfig(args, fileDeps),
    kernelDown: kernelDown ? () => kernelDown() : undefined,
  });
  await Promise.race([ready, done]);
  return { dp, file, control, done, listenPort, signals: signals as unknown as EventEmitter };
}

describe('daemon', () => {
  test('hands the kernel each client CIDR with its table group when it starts', async () => {
    const d = await start('  - { cidr: 1.2.3.4/32, table: "502" }\n  - { cidr: 5.6.7.0/24, table: "503" }');
    const groups = [...d.dp.clientGroups].sort((a, b) => a.group - b.group);
    expect(groups).toEqual([
      { cidr: '1.2.3.4/32', group: 502 },
      { cidr: '5.6.7.0/24', group: 503 },
    ]);
    d.signals.emit('SIGTERM');
    expect(await d.done).toBe(0);
  });

  test('replaces the kernel client table when a reload moves a client', async () => {
    const d = await start('  - { cidr: 1.2.3.4/32, table: "502" }');
    writeFileSync(d.file, configText(d.control, '  - { cidr: 1.2.3.4/32, table: "503" }\n  - { cidr: 10.0.0.0/8, table: "502" }', d.listenPort));
    await controlRequest(d.control, { cmd: 'reload' });
    const groups = [...d.dp.clientGroups].sort((a, b) => a.group - b.group);
    expect(groups).toEqual([
      { cidr: '10.0.0.0/8', group: 502 },
      { cidr: '1.2.3.4/32', group: 503 },
    ]);
    d.signals.emit('SIGTERM');
    expect(await d.done).toBe(0);
  });

  test('keeps the kernel client table when a reload is invalid', async () => {
    const d = await start('  - { cidr: 1.2.3.4/32, table: "502" }');
    writeFileSync(d.file, configText(d.control, '  - { cidr: 1.2.3.4/33, table: "503" }', d.listenPort));
    await expect(controlRequest(d.control, { cmd: 'reload' })).rejects.toThrow();
    expect(d.dp.clientGroups).toEqual([{ cidr: '1.2.3.4/32', group: 502 }]);
    d.signals.emit('SIGTERM');
    expect(await d.done).toBe(0);
  });

  test('stops and removes kernel state after replying when asked to go down', async () => {
    const calls: string[] = [];
    const d = await start('  - { cidr: 1.2.3.4/32, table: "502" }', async () => {
      calls.push('kernelDown');
      return ['pin /sys/fs/bpf/dnsseal (fake)'];
    });
    const reply = (await controlRequest(d.control, { cmd: 'down' })) as { stopping: boolean };
    expect(reply.stopping).toBe(true);
    expect(await d.done).toBe(0);
    expect(calls).toEqual(['kernelDown']);
    // the control socket is gone: a client sees "not running"
    await expect(controlRequest(d.control, { cmd: 'status' })).rejects.toMatchObject({ code: 'not_running' });
  });

  test('does not remove kernel state when stopped by a signal', async () => {
    const calls: string[] = [];
    const d = await start('  - { cidr: 1.2.3.4/32, table: "502" }', async () => {
      calls.push('kernelDown');
      return [];
    });
    d.signals.emit('SIGTERM');
    expect(await d.done).toBe(0);
    expect(calls).toEqual([]);
  });
});
