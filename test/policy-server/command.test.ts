import { describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps } from '../../src/config/load.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { createLogger } from '../../src/util/log.ts';
import { runPolicyServerCommand, type SignalSource } from '../../src/policy-server/command.ts';
import { randomPort } from '../integration/knot-server.ts';
import { CLIENT_502, CLIENT_503, CLIENT_504, KOJIMA, ProxySide, SECRET, ZONE_TEXT } from './helpers.ts';

// Figure 6 through the real YAML loader (src/config): the same rule syntax as local tables.
function yaml(port: number, client502Table: string): string {
  return `listen: ["127.0.0.1:${port}"]
upstreams:
  default: 127.0.0.1:1     # loopback, never used: every name asked is in the zone
tsig_keys:
  dnsseal-test: { algorithm: hmac-sha256, secret: "${SECRET}" }
channels:
  hub-a: { kind: tunnel, gateway: 192.0.2.1, identity: hub-a.nec.example, esp: aes256gcm16 }
  peer-b: { kind: peer, esp: chacha20poly1305 }
clients:                    # figure 6, table 501
  - { cidr: ${CLIENT_502}/32, table: "${client502Table}" }
  - { cidr: ${CLIENT_503}/32, table: "503" }
  - { cidr: ${CLIENT_504}/32, table: "504" }
tables:
  "502":
    - match: "*.jinji.nec.com"
      channel: hub-a
  "503":
    - match: "kojima.*"
      channel: peer-b
  "504":
    - match: "*.soumu.nec.com"
      channel: hub-a
serve:
  zone: nec.com.zone
`;
}

class FakeSignals extends EventEmitter implements SignalSource {
  override on(s: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): this {
    return super.on(s, fn);
  }
  override off(s: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): this {
    return super.off(s, fn);
  }
}

async function until<T>(fn: () => Promise<T>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await Bun.sleep(50);
    }
  }
}

describe('policy-server command', () => {
  test('serves figure 6 from YAML, reloads on SIGHUP and stops on SIGTERM when run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-ps-cmd-'));
    const file = join(dir, 'policy-server.yaml');
    writeFileSync(join(dir, 'nec.com.zone'), ZONE_TEXT);
    const port = randomPort();
    writeFileSync(file, yaml(port, '502'));
    const clock = new FakeClock(1_795_554_523_000);
    const signals = new FakeSignals();
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const exit = runPolicyServerCommand(new Map([['config', [file]]]), { clock, log, signals, loadDeps: { ...fileDeps, resolvTexts: () => [] } });
    try {
      const ask = (addr: string) => until(() => new ProxySide(clock, addr).query('udp', port, KOJIMA));
      expect((await ask(CLIENT_502)).ok && ((await ask(CLIENT_502)) as { annotation: unknown }).annotation).toMatchObject({ table: '502', channel: { name: 'hub-a', esp: 'aes256gcm16' } });
      const v503 = await new ProxySide(clock, CLIENT_503).query('tcp', port, KOJIMA);
      expect(v503.ok && v503.annotation).toMatchObject({ table: '503', channel: { name: 'peer-b', kind: 'peer' } });
      const v504 = await new ProxySide(clock, CLIENT_504).query('udp', port, KOJIMA);
      expect(v504.ok && v504.annotation).toMatchObject({ table: '504', channel: null });

      writeFileSync(file, yaml(port, '503'));
      signals.emit('SIGHUP');
      await until(async () => {
        const v = await new ProxySide(clock, CLIENT_502).query('udp', port, KOJIMA);
        if (!(v.ok && v.annotation?.table === '503')) throw new Error('not reloaded yet');
      });
      // A broken edit is refused; the running config stays.
      writeFileSync(file, yaml(port, '999'));
      signals.emit('SIGHUP');
      await until(async () => {
        if (!lines.some((l) => l.includes('reload refused'))) throw new Error('no refusal logged');
      });
      const still = await new ProxySide(clock, CLIENT_502).query('udp', port, KOJIMA);
      expect(still.ok && still.annotation?.table).toBe('503');
    } finally {
      signals.emit('SIGTERM');
      expect(await exit).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('throws a ConfigError with file:line before starting when the config is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-ps-cmd-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, yaml(randomPort(), '502').replace('zone: nec.com.zone', 'zone: nec.com.zone\n  colour: blue'));
    writeFileSync(join(dir, 'nec.com.zone'), ZONE_TEXT);
    const run = runPolicyServerCommand(new Map([['config', [file]]]), {
      clock: new FakeClock(),
      log: createLogger({ write: () => {} }),
      signals: new FakeSignals(),
      loadDeps: { ...fileDeps, resolvTexts: () => [] },
    });
    await expect(run).rejects.toThrow(`${file}:25: unknown key "colour" in serve`);
    rmSync(dir, { recursive: true, force: true });
  });
});
