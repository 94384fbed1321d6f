/**
 * The default data path (`auto`) never fails open (issue #11 item 1): when the configuration
 * protects anything and eBPF cannot come up, `dnsseal run` refuses to start and says why and
 * how to record only on purpose; with nothing to protect it falls back to `none` and says so;
 * `--datapath none` stays allowed. And `status` / `dnsseal_datapath_up` show a data path that
 * reports itself lost. Loopback only, no root (the eBPF constructor is injected).
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import { runDaemon, type SignalSource } from '../../src/daemon/index.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { createLogger } from '../../src/util/log.ts';
import { startDaemon } from './start.ts';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A config with `datapath` and, when `protect`, one rule with a channel. */
function config(datapath: string, protect: boolean): Config {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-auto-'));
  dirs.push(dir);
  const text = [
    'mode: host',
    'listen: [127.0.0.1:5399]',
    'upstreams: { default: 127.0.0.1:9 }',
    `datapath: ${datapath}`,
    `control: ${join(dir, 'control.sock')}`,
    'channels:',
    '  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }',
    'tables:',
    protect ? '  default:\n    - { match: "*.corp.example", channel: hub }' : '  default: []',
    '',
  ].join('\n');
  return { ...loadConfigText(text, join(dir, 'dnsseal.yaml'), new Map(), { readFile: () => '', resolvTexts: () => [] }), listen: ['127.0.0.1:0'] };
}

const noEbpf = () => {
  throw new DnssealError('datapath', 'unavailable', 'bpf(BPF_MAP_CREATE): Operation not permitted');
};

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'info', write: (l) => void lines.push(l) }) };
}

describe('daemon (datapath auto)', () => {
  test('refuses to start, saying why eBPF failed and how to record only, when the policy protects something and eBPF is unavailable', async () => {
    const { lines, log } = capture();
    const cfg = config('auto', true);
    const code = await runDaemon(cfg, { log, clock: realClock, metrics: new Metrics(), ebpf: noEbpf, ipsec: new NoIpsec(cfg.channels), signals: { on: () => {}, off: () => {} } as SignalSource });
    expect(code).toBe(1);
    const out = lines.join('\n');
    expect(out).toContain('daemon: could not start');
    expect(out).toContain('Operation not permitted');
    expect(out).toContain('1 rule with a channel');
    expect(out).toContain('--datapath none');
    expect(out).toContain('code=ebpf_required');
    // nothing listens: the control socket was never opened
    await expect(controlRequest(cfg.control, { cmd: 'status' })).rejects.toMatchObject({ code: 'not_running' });
  });

  test('falls back to none with a warning when nothing is protectable and eBPF is unavailable', async () => {
    const { lines, log } = capture();
    const d = await startDaemon(config('auto', false), { log, ebpf: noEbpf });
    expect(d.info.datapath).toBe('none');
    expect(lines.some((l) => l.includes('level=warn') && l.includes('protects nothing') && l.includes('Operation not permitted'))).toBe(true);
    d.signals.emit('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  test('runs record-only when --datapath none is explicit even though the policy protects something', async () => {
    const d = await startDaemon(config('none', true), { ebpf: noEbpf });
    expect(d.info.datapath).toBe('none');
    d.signals.emit('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  test('shows the reason in status and dnsseal_datapath_up 0 when the data path reports itself lost', async () => {
    const cfg = config('auto', true);
    const dp = new FakeDatapath({ clock: realClock });
    const metrics = new Metrics();
    const d = await startDaemon(cfg, { ebpf: () => dp, metrics });
    const status = async () => (await controlRequest(cfg.control, { cmd: 'status' })) as { datapath: { kind: string; up: boolean; reason: string | null } };
    expect((await status()).datapath).toEqual({ kind: 'fake', up: true, reason: null });
    expect(metrics.expose()).toContain('dnsseal_datapath_up 1');
    dp.unhealthy = 'pin /sys/fs/bpf/dnsseal/dest removed';
    expect((await status()).datapath).toEqual({ kind: 'fake', up: false, reason: 'pin /sys/fs/bpf/dnsseal/dest removed' });
    expect(metrics.expose()).toContain('dnsseal_datapath_up 0');
    d.signals.emit('SIGTERM');
    expect(await d.exit).toBe(0);
  });
});
