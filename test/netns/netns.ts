/** Small helpers for the datapath netns tests: run commands, build namespaces, capture, clean up. */
import type { Subprocess } from 'bun';

export interface Out {
  code: number;
  out: string;
  err: string;
}

export function sh(argv: string[], opts: { timeoutMs?: number; ok?: boolean } = {}): Out {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe', timeout: opts.timeoutMs ?? 20000 });
  const res = { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
  if (opts.ok && res.code !== 0) throw new Error(`${argv.join(' ')} failed (${res.code}): ${res.err || res.out}`);
  return res;
}

export function inNs(ns: string, argv: string[], opts: { timeoutMs?: number; ok?: boolean } = {}): Out {
  return sh(['ip', 'netns', 'exec', ns, ...argv], opts);
}

/** Like inNs but only the network namespace changes (bpffs and cgroupfs stay visible). */
export function nsenter(ns: string, argv: string[], opts: { timeoutMs?: number; ok?: boolean } = {}): Out {
  return sh(['nsenter', `--net=/run/netns/${ns}`, ...argv], opts);
}

export function script(ns: string, lines: string[]): void {
  for (const l of lines) inNs(ns, ['sh', '-c', l], { ok: true });
}

export function delNs(...names: string[]): void {
  for (const n of names) sh(['ip', 'netns', 'del', n]);
}

/** nft counter packets of the rule carrying `comment` in table inet dnsseal_t. */
export function nftCount(ns: string, comment: string): number {
  const r = inNs(ns, ['nft', '-j', 'list', 'table', 'inet', 'dnsseal_t']);
  const j = JSON.parse(r.out) as { nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[] };
  for (const item of j.nftables) {
    if (item.rule?.comment === comment) {
      for (const e of item.rule.expr) if (e.counter) return e.counter.packets;
    }
  }
  throw new Error(`no nft rule with comment ${comment} in ${ns}`);
}

export function bunBin(): string {
  return `${process.cwd()}/node_modules/.bin/bun`;
}

/**
 * tcpdump writing every packet on `iface` in `ns` to `file`, returned once it says it is
 * listening: a capture that has not started yet would make "zero clear packets" hold blindly.
 * --immediate-mode -U: each packet reaches the file as it comes, not in blocks a stop loses.
 */
export async function startCapture(ns: string, iface: string, file: string, ms = 15_000): Promise<Subprocess> {
  const p = Bun.spawn(['ip', 'netns', 'exec', ns, 'tcpdump', '-n', '--immediate-mode', '-i', iface, '-U', '-w', file], { stdout: 'ignore', stderr: 'pipe' });
  const reader = p.stderr.getReader();
  const end = Date.now() + ms;
  let text = '';
  // one read at a time (a read left behind by a lost race would swallow the line we wait for)
  while (!text.includes('listening on')) {
    const left = end - Date.now();
    const r = left > 0 ? await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]) : null;
    if (r === null || r.done) {
      p.kill('SIGKILL');
      throw new Error(`tcpdump on ${iface} in ${ns} did not start capturing within ${ms} ms: ${text.trim() || '(no output)'}`);
    }
    text += new TextDecoder().decode(r.value);
  }
  reader.releaseLock();
  return p;
}
