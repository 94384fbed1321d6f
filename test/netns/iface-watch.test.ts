/**
 * A WAN interface named in config that does not exist at start-up gets the leak guard when it
 * appears, and again when it is deleted and re-created (interface poll, here every 300 ms).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { kernelHasTcx, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { bunBin, delNs, nsenter, sh } from './netns.ts';

const skip = privSkipReason() ?? (sh(['which', 'nsenter']).code !== 0 ? 'nsenter missing' : undefined);
if (skip) console.log(`netns interface watch: skipping: ${skip}`);
const HELPER = 'test/netns/fixtures/dp-helper.ts';
/** What the query reports for our guard: the tcx program name, or one clsact filter (< 6.6). */
const GUARD = kernelHasTcx() ? ['dnsseal_wan_out'] : ['clsact'];

(skip ? describe.skip : describe)('netns interface watch', () => {
  const ns = `dnsseal-w${process.pid % 10000}`;
  const root = scratchPinRoot('watch');
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  const guardOn = (dev: string): string[] => {
    const q = JSON.parse(nsenter(ns, [bunBin(), HELPER, 'query', dev], { ok: true }).out);
    return [...q[dev].tcxEgress, ...(q[dev].clsactEgress ? ['clsact'] : [])];
  };
  const waitFor = async (fn: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (fn()) return true;
      await Bun.sleep(200);
    }
    return fn();
  };

  beforeAll(async () => {
    await wipe(root);
    delNs(ns);
    sh(['ip', 'netns', 'add', ns], { ok: true });
    proc = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, bunBin(), HELPER, 'watch', root, 'wanx', '300'], { stdout: 'pipe', stderr: 'inherit' });
    const reader = proc.stdout as ReadableStream<Uint8Array>;
    const first = await reader.getReader().read();
    expect(new TextDecoder().decode(first.value)).toContain('ready');
  });

  afterAll(async () => {
    proc?.kill('SIGTERM');
    await proc?.exited;
    nsenter(ns, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
    delNs(ns);
    await wipe(root);
  });

  test('the guard is attached within a poll interval when the interface appears', async () => {
    sh(['ip', '-n', ns, 'link', 'add', 'wanx', 'type', 'veth', 'peer', 'name', 'wany'], { ok: true });
    expect(await waitFor(() => guardOn('wanx').length === 1, 3000)).toBe(true);
    expect(guardOn('wanx')).toEqual(GUARD);
  });

  test('the guard is attached again when the interface is deleted and re-created', async () => {
    sh(['ip', '-n', ns, 'link', 'del', 'wanx'], { ok: true });
    await Bun.sleep(500);
    sh(['ip', '-n', ns, 'link', 'add', 'wanx', 'type', 'veth', 'peer', 'name', 'wany'], { ok: true });
    expect(await waitFor(() => guardOn('wanx').length === 1, 3000)).toBe(true);
    expect(guardOn('wanx')).toEqual(GUARD);
  });
});
