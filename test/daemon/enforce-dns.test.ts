/**
 * enforce_dns in the running daemon (fake nft backend, fake datapath): applied once the proxy
 * listens with its real listen address as the redirect target, changed live by a reload (no
 * restart needed), shown in `status`, and refused in host mode by the loader.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import { controlRequest } from '../../src/control/client.ts';
import { FakeDnsEnforcer } from '../../src/datapath/dns-enforce.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { freePort } from './reload-lab.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

const dirs: string[] = [];
let running: StartedDaemon | undefined;

afterEach(async () => {
  if (running) {
    running.signals.emit('SIGTERM');
    await running.exit;
    running = undefined;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function configFile(mode: string): { path: string; control: string; write: (m: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-enforce-'));
  dirs.push(dir);
  const path = join(dir, 'dnsseal.yaml');
  const control = join(dir, 'control.sock');
  const write = (m: string) =>
    writeFileSync(path, ['mode: gateway', 'lan: [lan0]', 'upstreams: {default: 127.0.0.1:9}', 'datapath: fake', `control: ${control}`, `enforce_dns: ${m}`, ''].join('\n'));
  write(mode);
  return { path, control, write };
}

const load = (path: string) => loadConfig(new Map([['config', [path]]]), fileDeps);
/** The file's config, listening on a free port unless the file says where (port 0 is for tests only, not a config value). */
const loadFree = (path: string) => (readFileSync(path, 'utf8').includes('listen:') ? load(path) : { ...load(path), listen: ['127.0.0.1:0'] });

describe('daemon enforce_dns', () => {
  test('applies the mode with the bound listen address once the proxy listens, changes it on reload, and reports it', async () => {
    const f = configFile('redirect');
    const enforcer = new FakeDnsEnforcer();
    running = await startDaemon(loadFree(f.path), { enforcer, reloadConfig: () => loadFree(f.path) });
    const udp = running.info.listeners.find((l) => l.transport === 'udp')!;
    expect(enforcer.plan).toEqual({ mode: 'redirect', lan: ['lan0'], listen: [`127.0.0.1:${udp.port}`] });
    expect(((await controlRequest(f.control, { cmd: 'status' })) as { enforce_dns: string }).enforce_dns).toBe('redirect');

    f.write('drop');
    const r = (await controlRequest(f.control, { cmd: 'reload' })) as { restartNeeded: string[] };
    expect(r.restartNeeded).toEqual([]);
    expect(enforcer.plan?.mode).toBe('drop');

    // a reload that moves the listen address: the redirect goes to the new one
    const other = await freePort();
    writeFileSync(f.path, readFileSync(f.path, 'utf8') + `listen: [127.0.0.1:${other}]\n`);
    const moved = (await controlRequest(f.control, { cmd: 'reload' })) as { applied: string[] };
    expect(moved.applied).toEqual(['listen']);
    expect(enforcer.plan).toEqual({ mode: 'drop', lan: ['lan0'], listen: [`127.0.0.1:${other}`] });

    f.write('off');
    await controlRequest(f.control, { cmd: 'reload' });
    expect(enforcer.plan).toBeUndefined();
    expect(((await controlRequest(f.control, { cmd: 'status' })) as { enforce_dns: string }).enforce_dns).toBe('off');
  });

  test('refuses enforce_dns in host mode with the line that sets it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-enforce-'));
    dirs.push(dir);
    const path = join(dir, 'dnsseal.yaml');
    writeFileSync(path, 'mode: host\nupstreams: {default: 127.0.0.1:9}\nenforce_dns: drop\n');
    expect(() => load(path)).toThrow(ConfigError);
    expect(() => load(path)).toThrow(/dnsseal\.yaml:3: enforce_dns drop acts on the LAN interfaces/);
  });
});
