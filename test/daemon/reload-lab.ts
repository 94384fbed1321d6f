/**
 * The in-process daemon of the live-reload tests: a config file in a temporary directory that
 * the test rewrites, a FakeUpstream (names under `corp.test`, `lab.test`, `extra.test` and
 * `old.test` get 203.0.113.x, everything else 198.51.100.7), `reload` over the control socket,
 * the log lines (`offThread`: reloads read the file in a worker, as `dnsseal run` does), and a
 * query stream that counts every answer (one try per query, no
 * retransmission: a query the daemon drops counts as lost). Loopback only.
 */
import dnsPacket from 'dns-packet';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import type { DaemonDeps } from '../../src/daemon/index.ts';
import { offThreadConfig } from '../../src/daemon/off-thread-config.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { createLogger } from '../../src/util/log.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { startDaemon, type StartedDaemon } from './start.ts';

const ZONES: Record<string, string> = { 'corp.test': '203.0.113.', 'lab.test': '203.0.113.1', 'extra.test': '203.0.113.2', 'old.test': '203.0.113.3' };

/** The address the fake upstream gives `name` (a stable one per name). */
export function addressOf(name: string): string {
  for (const [zone, prefix] of Object.entries(ZONES)) {
    if (name === zone || name.endsWith(`.${zone}`)) return `${prefix}${(name.length % 9) + 1}`;
  }
  return '198.51.100.7';
}

/** Polls `cond` until it holds; fails naming `what` after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** A loopback port free for UDP and TCP right now (bound, then let go). */
export async function freePort(): Promise<number> {
  for (;;) {
    const u = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const port = u.port;
    try {
      const t = Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } });
      t.stop(true);
      return port;
    } catch {
      /* TCP side taken: pick again */
    } finally {
      u.close();
    }
  }
}

export interface AskResult {
  rcode: string;
  addrs: string[];
}

/**
 * One A query over UDP from `from`; rejects after `ms` without an answer. A query counts as lost
 * only then, so `ms` is generous: a loaded CI machine can hold a loopback answer for seconds.
 */
export async function ask(port: number, name: string, from = '127.0.0.1', ms = 10_000): Promise<AskResult> {
  const done = Promise.withResolvers<Uint8Array>();
  const s = await Bun.udpSocket({ binaryType: 'uint8array', hostname: from, port: 0, socket: { data: (_s, d) => done.resolve(d), error: (_s, e) => done.reject(e) } });
  const timer = setTimeout(() => done.reject(new Error(`no answer from 127.0.0.1:${port} for ${name} within ${ms} ms`)), ms);
  try {
    s.send(dnsPacket.encode({ type: 'query', id: 0x4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
    const a = dnsPacket.decode(Buffer.from(await done.promise)) as dnsPacket.DecodedPacket & { rcode: string };
    return { rcode: a.rcode, addrs: (a.answers ?? []).flatMap((r) => (r.type === 'A' ? [String(r.data)] : [])) };
  } finally {
    clearTimeout(timer);
    s.close();
  }
}

export interface FlowResult {
  sent: number;
  answered: number;
  rcodes: Record<string, number>;
}

/**
 * Queries for `names` in turn, `window` outstanding, to `target` (which the test may move to
 * another port mid-stream); each waits up to 3 s for its answer.
 */
export class QueryFlow {
  target: number;
  private sent = 0;
  private answered = 0;
  private readonly rcodes: Record<string, number> = {};
  private running = true;
  private readonly workers: Promise<void>[] = [];

  constructor(
    port: number,
    private readonly names: string[],
    private readonly from = '127.0.0.1',
    window = 8,
  ) {
    this.target = port;
    for (let w = 0; w < window; w++) this.workers.push(this.worker(w));
  }

  private async worker(w: number): Promise<void> {
    for (let i = w; this.running; i += 8) {
      this.sent++;
      try {
        const r = await ask(this.target, this.names[i % this.names.length]!, this.from);
        this.answered++;
        this.rcodes[r.rcode] = (this.rcodes[r.rcode] ?? 0) + 1;
      } catch {
        /* lost: counted as sent, not answered */
      }
    }
  }

  /** How many were answered so far. */
  get count(): number {
    return this.answered;
  }

  /** Stops sending, waits for the outstanding queries, and says how it went. */
  async stop(): Promise<FlowResult> {
    this.running = false;
    await Promise.all(this.workers);
    return { sent: this.sent, answered: this.answered, rcodes: { ...this.rcodes } };
  }
}

export interface ReloadLab {
  dir: string;
  file: string;
  control: string;
  upstream: FakeUpstream;
  d: StartedDaemon;
  metrics: Metrics;
  lines: string[];
  /** The first UDP port the daemon listens on. */
  port: number;
  write(text: string): void;
  /** `reload` over the control socket: its reply. */
  reload(): Promise<Record<string, unknown>>;
  /** `reload` that must be refused: the error. */
  refused(): Promise<Error & { code?: string }>;
  status(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Starts the daemon on the file `text(upstreamPort, control)` gives; `deps` adds to the test
 * defaults (NoIpsec, the fake data path the file names).
 */
export async function reloadLab(
  text: (upstreamPort: number, control: string) => string,
  deps: Partial<Omit<DaemonDeps, 'signals' | 'onReady'>> & { offThread?: boolean } = {},
): Promise<ReloadLab> {
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-live-'));
  const file = join(dir, 'dnsseal.yaml');
  const control = join(dir, 'control.sock');
  const upstream = await FakeUpstream.start((q, t) => t.answerFor(q, { answers: [{ name: q.name, type: 'A', ttl: 300, class: 'IN', data: addressOf(q.name) }] }));
  const lines: string[] = [];
  const metrics = new Metrics();
  writeFileSync(file, text(upstream.port, control));
  const load = (): Config => loadConfig(new Map([['config', [file]]]), fileDeps);
  const cfg = load();
  const { offThread, ...rest } = deps;
  const log = createLogger({ level: cfg.logLevel, format: cfg.logFormat, write: (l) => void lines.push(l) });
  const d = await startDaemon(cfg, {
    log,
    metrics,
    // the CLI's loader: the file read and the rules indexed in a worker
    reloadConfig: offThread ? offThreadConfig(new Map([['config', [file]]]), { log, maxShadowRules: 100_000 }) : load,
    ...rest,
  });
  // A reload through the worker (lowest CPU priority) waits for any other load on the machine:
  // the tests are about what a reload does, not how fast, so the reply may take up to 110 s (under
  // bun's 120 s per test) rather than the CLI's 10 s.
  const reload = () => controlRequest(control, { cmd: 'reload' }, { timeoutMs: 110_000 }) as Promise<Record<string, unknown>>;
  return {
    dir,
    file,
    control,
    upstream,
    d,
    metrics,
    lines,
    port: d.info.listeners.find((l) => l.transport === 'udp')!.port,
    write: (t) => writeFileSync(file, t),
    reload,
    refused: () =>
      reload().then(
        (r) => {
          throw new Error(`expected the reload to be refused, got ${JSON.stringify(r)}`);
        },
        (e: Error & { code?: string }) => e,
      ),
    status: () => controlRequest(control, { cmd: 'status' }) as Promise<Record<string, unknown>>,
    stop: async () => {
      d.signals.emit('SIGTERM');
      await d.exit;
      upstream.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
