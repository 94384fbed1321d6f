/**
 * `flush` against a running in-process daemon: the daemon hands the control handler the
 * channels and tables it runs with, so an unknown one is refused (nothing flushed) and the
 * known ones follow a reload. No upstream traffic: datapath fake, loopback listener.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import { startDaemon, type StartedDaemon } from '../daemon/start.ts';
import { deps } from '../config/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-flush-daemon-'));
const control = join(dir, 'control.sock');

function config(channels: string[]): Config {
  const text = [
    'upstreams: {default: 127.0.0.1:1}',
    'datapath: fake',
    `control: ${control}`,
    'channels:',
    ...channels.map((c) => `  ${c}: {kind: tunnel, gateway: 192.0.2.1}`),
    'tables:',
    '  default:',
    `    - {match: "*.corp.example", channel: ${channels[0]}}`,
    '  engineering:',
    `    - {match: "*.lab.example", channel: ${channels[0]}}`,
    '',
  ].join('\n');
  return { ...loadConfigText(text, 'flush.yaml', new Map(), deps()), listen: ['127.0.0.1:0'] };
}

let next = config(['hub', 'partner']);
let daemon: StartedDaemon;

beforeAll(async () => {
  daemon = await startDaemon(config(['hub', 'partner']), { reloadConfig: () => next });
});

afterAll(async () => {
  daemon.signals.emit('SIGTERM');
  await daemon.exit;
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(args: Record<string, unknown>): Promise<{ code: string; message: string }> {
  try {
    await controlRequest(control, { cmd: 'flush', args });
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('flush was accepted');
}

describe('control/flush against the daemon', () => {
  test('refuses an unknown channel naming the running ones', async () => {
    const err = await refusal({ channel: 'partnr' });
    expect(err.code).toBe('bad_args');
    expect(err.message).toContain('unknown channel "partnr" (known: hub, partner)');
  });

  test('refuses an unknown table naming the running ones', async () => {
    expect((await refusal({ table: 'eng' })).message).toContain('unknown table "eng" (known: default, engineering)');
  });

  test('accepts a known channel and table', async () => {
    expect(await controlRequest(control, { cmd: 'flush', args: { channel: 'partner', table: 'engineering' } })).toEqual({ released: 0, retired: 0 });
  });

  test('knows the channels of the new config when a reload renamed one', async () => {
    next = config(['hub', 'partner2']);
    await controlRequest(control, { cmd: 'reload' });
    expect((await refusal({ channel: 'partner' })).message).toContain('(known: hub, partner2)');
  });
});
