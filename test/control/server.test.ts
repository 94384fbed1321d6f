import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlReplyError, controlRequest } from '../../src/control/client.ts';
import type { ControlHandlers } from '../../src/control/protocol.ts';
import { type ControlServer, startControlServer } from '../../src/control/server.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';

let dir: string;
let servers: ControlServer[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dnsseal-control-'));
  servers = [];
});
afterEach(async () => {
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const handlers: ControlHandlers = {
  echo: async (args) => args,
  fails: async () => {
    throw new DnssealError('registry', 'map_full', 'destination map is full');
  },
  crashes: async () => {
    throw new TypeError('undefined is not a function');
  },
  nothing: async () => undefined,
};

async function start(
  path = join(dir, 'control.sock'),
  h = handlers,
  maxRequestBytes?: number,
  idleTimeoutMs?: number,
): Promise<ControlServer> {
  const s = await startControlServer(path, h, silentLogger, { maxRequestBytes, idleTimeoutMs });
  servers.push(s);
  return s;
}

/** The error `p` rejects with; fails the test when it resolves. */
async function failure(p: Promise<unknown>): Promise<DnssealError> {
  try {
    await p;
  } catch (err) {
    return err as DnssealError;
  }
  throw new Error('expected a rejection');
}

/** Sends raw bytes on one connection and collects `count` reply lines. */
function raw(path: string, data: string, count: number): Promise<{ replies: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    let buf = '';
    let closed = false;
    const replies: unknown[] = [];
    const done = () => resolve({ replies, closed });
    sock.on('connect', () => sock.write(data));
    sock.on('data', (c) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (replies.length >= count && !closed) {
        sock.end();
      }
    });
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('error', reject);
  });
}

describe('control/server', () => {
  test('a request round-trips when the daemon answers', async () => {
    const s = await start();
    expect(await controlRequest(s.path, { cmd: 'echo', args: { a: 1, b: ['x'] } })).toEqual({ a: 1, b: ['x'] });
    expect(await controlRequest(s.path, { cmd: 'nothing' })).toBeNull();
  });

  test('the socket has mode 0600 when listening', async () => {
    const s = await start();
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
  });

  test('the parent directory is created with mode 0700 when missing', async () => {
    const s = await start(join(dir, 'run', 'dnsseal', 'control.sock'));
    expect(statSync(join(dir, 'run', 'dnsseal')).mode & 0o777).toBe(0o700);
    expect(await controlRequest(s.path, { cmd: 'echo' })).toEqual({});
  });

  test('a handler error becomes an error reply with its code when it is a DnssealError', async () => {
    const s = await start();
    const err = await failure(controlRequest(s.path, { cmd: 'fails' }));
    expect(err).toBeInstanceOf(ControlReplyError);
    expect(err.code).toBe('map_full');
    expect(err.message).toBe('registry: destination map is full');
  });

  test('a handler crash becomes an internal error reply when it throws a plain error', async () => {
    const s = await start();
    const err = await failure(controlRequest(s.path, { cmd: 'crashes' }));
    expect(err.code).toBe('internal');
    expect(err.message).toContain('crashes failed: undefined is not a function');
    expect(await controlRequest(s.path, { cmd: 'echo' })).toEqual({});
  });

  test.each([
    ['not JSON', '{"cmd": list}\n', 'bad_request'],
    ['a JSON array', '[1,2]\n', 'bad_request'],
    ['no cmd', '{"args":{}}\n', 'bad_request'],
    ['args that are not an object', '{"cmd":"echo","args":[1]}\n', 'bad_request'],
    ['an unknown command', '{"cmd":"selfdestruct"}\n', 'unknown_command'],
    ['a prototype property as command', '{"cmd":"constructor"}\n', 'unknown_command'],
  ])('the reply is an error and the server keeps serving when the request is %s', async (_label, line, code) => {
    const s = await start();
    const { replies } = await raw(s.path, line + '{"cmd":"echo","args":{"still":"here"}}\n', 2);
    expect(replies[0]).toMatchObject({ ok: false, error: { code } });
    expect(replies[1]).toEqual({ ok: true, result: { still: 'here' } });
  });

  test('replies come back in request order when requests are pipelined', async () => {
    const s = await start();
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ cmd: 'echo', args: { i } })).join('\n') + '\n';
    const { replies } = await raw(s.path, lines, 20);
    expect(replies.map((r) => (r as { result: { i: number } }).result.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test('an oversized request is refused and the connection closed when it exceeds the limit', async () => {
    const s = await start(undefined, handlers, 1024);
    const big = JSON.stringify({ cmd: 'echo', args: { pad: 'x'.repeat(4096) } }) + '\n';
    const { replies, closed } = await raw(s.path, big, 1);
    expect(replies).toEqual([{ ok: false, error: { code: 'request_too_large', message: 'control: request longer than 1024 bytes' } }]);
    expect(closed).toBe(true);
    expect(await controlRequest(s.path, { cmd: 'echo', args: { ok: true } })).toEqual({ ok: true });
  });

  test('an oversized request is refused when it arrives without a newline', async () => {
    const s = await start(undefined, handlers, 1024);
    const { replies } = await raw(s.path, 'x'.repeat(5000), 1);
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'request_too_large' } });
  });

  test('a silent connection is closed when it stays idle', async () => {
    const s = await start(undefined, handlers, undefined, 20);
    const { replies, closed } = await raw(s.path, '', 1);
    expect(replies).toEqual([]);
    expect(closed).toBe(true);
  });

  test('a second server is refused with a clear message when the socket answers', async () => {
    const s = await start();
    const err = await failure(startControlServer(s.path, handlers, silentLogger));
    expect(err.code).toBe('already_running');
    expect(err.message).toBe(`control: another dnsseal is running (control socket ${s.path} answers)`);
    expect(await controlRequest(s.path, { cmd: 'echo' })).toEqual({});
  });

  test('a stale socket is replaced when no daemon listens on it', async () => {
    const path = join(dir, 'control.sock');
    // A daemon that died without cleaning up: listen in a child, then SIGKILL it.
    const child = Bun.spawnSync([
      process.execPath,
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(child.signalCode).toBe('SIGKILL');
    expect(statSync(path).isSocket()).toBe(true);
    const s = await start(path);
    expect(await controlRequest(s.path, { cmd: 'echo', args: { fresh: 1 } })).toEqual({ fresh: 1 });
  });

  test('a path that is not a socket is left alone and refused', async () => {
    const path = join(dir, 'control.sock');
    writeFileSync(path, 'important');
    const err = await failure(startControlServer(path, handlers, silentLogger));
    expect(err.code).toBe('path_in_use');
    expect(statSync(path).isFile()).toBe(true);
  });

  test('close removes the socket file when the server stops', async () => {
    const s = await start();
    servers = [];
    await s.close();
    expect(existsSync(s.path)).toBe(false);
  });
});

describe('control/client', () => {
  test('not_running names the path when there is no socket', async () => {
    const path = join(dir, 'nope.sock');
    const err = await failure(controlRequest(path, { cmd: 'list' }));
    expect(err).toBeInstanceOf(DnssealError);
    expect(err.code).toBe('not_running');
    expect(err.message).toContain(path);
  });

  test('not_running when the socket file is stale', async () => {
    const path = join(dir, 'stale.sock');
    Bun.spawnSync([
      process.execPath,
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    const err = await failure(controlRequest(path, { cmd: 'list' }));
    expect(err.code).toBe('not_running');
  });

  test('timeout when the daemon never replies', async () => {
    const path = join(dir, 'silent.sock');
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(path, r));
    try {
      const err = await failure(controlRequest(path, { cmd: 'list' }, { timeoutMs: 20 }));
      expect(err.code).toBe('timeout');
    } finally {
      silent.close();
    }
  });

  test('protocol error when the daemon closes without a reply', async () => {
    const path = join(dir, 'rude.sock');
    const rude = createServer((s) => s.end());
    await new Promise<void>((r) => rude.listen(path, r));
    try {
      const err = await failure(controlRequest(path, { cmd: 'list' }));
      expect(err.code).toBe('protocol');
    } finally {
      rude.close();
    }
  });

  test('protocol error when the reply is not JSON', async () => {
    const path = join(dir, 'garbage.sock');
    const g = createServer((s) => s.end('<html>\n'));
    await new Promise<void>((r) => g.listen(path, r));
    try {
      const err = await failure(controlRequest(path, { cmd: 'list' }));
      expect(err.code).toBe('protocol');
    } finally {
      g.close();
    }
  });
});
