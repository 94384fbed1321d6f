/**
 * A reload lets the config it replaced go (issue 12: memory stays bounded across reloads). The
 * long-lived closures of the daemon (undo steps, parts, signal handlers) share the scopes they
 * were made in; a start-up config left reachable there kept a second copy of every rule alive
 * after the first reload (200k rules: +100 MB for good).
 */
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import { startDaemon } from './start.ts';
import { freePort } from './reload-lab.ts';

describe('daemon/reload memory', () => {
  test('frees the start-up config once a reload replaced its rules', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-mem-'));
    const file = join(dir, 'dnsseal.yaml');
    const control = join(dir, 'control.sock');
    const text = (zone: string, port: number) =>
      [`listen: [127.0.0.1:${port}]`, 'upstreams: { default: 127.0.0.1:9 }', 'datapath: fake', `control: ${control}`, 'channels:', '  hub: { kind: tunnel, gateway: 192.0.2.1 }', 'tables:', '  default:', `    - { match: "*.${zone}.test", channel: hub }`, ''].join('\n');
    const port = await freePort();
    writeFileSync(file, text('corp', port));
    const load = (): Config => loadConfig(new Map([['config', [file]]]), fileDeps);
    // made in a function of its own: nothing here holds the config but the WeakRef
    let first!: WeakRef<object>;
    const start = () => {
      const cfg = load();
      first = new WeakRef(cfg.tables);
      return startDaemon(cfg, { reloadConfig: load });
    };
    const d = await start();
    writeFileSync(file, text('lab', port));
    expect(await controlRequest(control, { cmd: 'reload' })).toMatchObject({ applied: ['tables'] });
    const end = Date.now() + 5000;
    while (first.deref() !== undefined && Date.now() < end) {
      Bun.gc(true);
      await Bun.sleep(20);
    }
    expect(first.deref()).toBeUndefined();
    d.signals.emit('SIGTERM');
    expect(await d.exit).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
