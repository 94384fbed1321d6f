/**
 * An in-process daemon (fake data path, no IPsec unless given) started from a config file, so
 * that the control socket's `reload`, `flush` and `status` work as they do for an operator,
 * with scripted upstreams on loopback that answer each name with an address of its own and
 * count what they are asked. For the cache and upstream tests of the daemon.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import type { DaemonDeps } from '../../src/daemon/index.ts';
import type { StatusReport } from '../../src/daemon/status.ts';
import { askUdp } from '../proxy/proxy-fixture.ts';
import { FakeUpstream, type FakeQuery } from '../proxy/fake-upstream.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

/** A scripted upstream: `name → address` (TTL `ttl`), NXDOMAIN-less: an unknown name gets 192.0.2.254. */
export async function namedUpstream(addrs: Record<string, string> = {}, ttl = 300): Promise<FakeUpstream> {
  return FakeUpstream.start((q, t) => t.answerFor(q, { answers: [{ name: q.name, type: 'A', ttl, class: 'IN', data: addrs[q.name.toLowerCase()] ?? '192.0.2.254' }] }));
}

/** How many times `up` was asked for `name` (probes and other names left out). */
export function asked(up: FakeUpstream, name: string): number {
  return up.queries.filter((q: FakeQuery) => q.name.toLowerCase() === name).length;
}

export interface AnswerLab {
  d: StartedDaemon;
  dir: string;
  file: string;
  control: string;
  port: number;
  /** Rewrites the config file (`text` with the control line added). */
  write(text: string): void;
  reload(): Promise<Record<string, unknown>>;
  status(): Promise<StatusReport>;
  control_(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
  /** One A query over UDP from `from` (a loopback address); the decoded answer. */
  ask(name: string, from?: string): ReturnType<typeof askUdp>;
  stop(): Promise<void>;
}

/** `text`: the config without `control:` (added here) and `listen:` (127.0.0.1, a free port). */
export async function answerLab(text: string, deps: Partial<Omit<DaemonDeps, 'signals' | 'onReady'>> = {}): Promise<AnswerLab> {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-answer-'));
  const file = join(dir, 'dnsseal.yaml');
  const control = join(dir, 'control.sock');
  const write = (t: string) => writeFileSync(file, `control: ${control}\nlisten: [127.0.0.1:5399]\ndatapath: fake\nlog_level: error\n${t}`);
  write(text);
  // the file with the flags the CLI would pass; port 0 is the test's choice (a file cannot say 0)
  const load = (): Config => ({ ...loadConfig(new Map([['config', [file]]]), fileDeps), listen: ['127.0.0.1:0'] });
  const d = await startDaemon(load(), { reloadConfig: load, ...deps });
  const port = d.info.listeners.find((l) => l.transport === 'udp')!.port;
  let id = 1;
  return {
    d,
    dir,
    file,
    control,
    port,
    write,
    reload: () => controlRequest(control, { cmd: 'reload' }) as Promise<Record<string, unknown>>,
    status: () => controlRequest(control, { cmd: 'status' }) as Promise<StatusReport>,
    control_: (cmd, args) => controlRequest(control, { cmd, ...(args ? { args } : {}) }),
    ask: (name, from = '127.0.0.1') => askUdp(port, clientQuery(name, 1, false, (id = (id + 1) & 0xffff)), from),
    stop: async () => {
      d.signals.emit('SIGTERM');
      await d.exit;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The A addresses of a decoded answer. */
export function aRecords(p: { answers?: Array<{ type: string }> }): string[] {
  return (p.answers ?? []).filter((a) => a.type === 'A').map((a) => (a as unknown as { data: string }).data);
}
