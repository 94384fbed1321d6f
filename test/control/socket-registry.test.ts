/** The registry's commands over a real unix socket, as `dnsseal list/flush/status` use them. */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/control/client.ts';
import { formatList } from '../../src/control/format.ts';
import { createControlHandlers, type ListRow } from '../../src/control/handlers.ts';
import { type ControlServer, startControlServer } from '../../src/control/server.ts';
import { DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import { silentLogger } from '../../src/util/log.ts';
import { OTHER, reg, rig } from '../registry/helpers.ts';

let dir: string;
let server: ControlServer | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dnsseal-ctl-reg-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function daemon() {
  const r = rig();
  await r.registry.register(reg({ addrs: ['192.0.2.1'], names: ['www.corp.example'], ttlS: 300 }));
  await r.registry.register(reg({ addrs: ['2001:db8::7'], names: ['mail.corp.example'], channel: OTHER, ttlS: 90 }));
  server = await startControlServer(join(dir, 'control.sock'), createControlHandlers({ registry: r.registry, clock: r.clock }), silentLogger);
  return { ...r, path: server.path };
}

describe('control over a unix socket', () => {
  test('list returns JSON rows that format as the table when the daemon has entries', async () => {
    const { path } = await daemon();
    const rows = (await controlRequest(path, { cmd: 'list' })) as ListRow[];
    expect(rows.map((r) => [r.address, r.channel, r.names, r.expiresInS])).toEqual([
      ['192.0.2.1', 'hub', ['www.corp.example'], 300],
      ['2001:db8::7', 'other', ['mail.corp.example'], 90],
    ]);
    expect(formatList(rows).split('\n')[0]).toBe('TABLE    ADDRESS      CHANNEL  EXPIRES-IN  IDLE  NAMES');
  });

  test('list filters by channel when asked over the socket', async () => {
    const { path } = await daemon();
    const rows = (await controlRequest(path, { cmd: 'list', args: { channel: 'other' } })) as ListRow[];
    expect(rows.map((r) => r.address)).toEqual(['2001:db8::7']);
  });

  test('flush by address retires the entry, still in the map, when sent over the socket', async () => {
    const { path, dp } = await daemon();
    expect(await controlRequest(path, { cmd: 'flush', args: { address: '2001:db8::7' } })).toEqual({ released: 0, retired: 1 });
    expect(dp.list().map((e) => [e.key.addr, e.value.flags])).toEqual([
      ['192.0.2.1', 0],
      ['2001:db8::7', DEST_F_RETIRED],
    ]);
    const rows = (await controlRequest(path, { cmd: 'list' })) as ListRow[];
    expect(rows.map((r) => r.retired)).toEqual([undefined, true]);
  });

  test('status reports the datapath and entry counts when asked over the socket', async () => {
    const { path } = await daemon();
    expect(await controlRequest(path, { cmd: 'status' })).toMatchObject({
      entries: { total: 2, live: 2, retired: 0, blocked: 0, static: 0, by_channel: { hub: 1, other: 1 } },
    });
  });

  test('a bad filter comes back as bad_args when sent over the socket', async () => {
    const { path } = await daemon();
    const err = await controlRequest(path, { cmd: 'list', args: { address: 'nope' } }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('bad_args');
    expect(err?.message).toBe('control: address "nope" is not an IP address or a CIDR');
  });
});
