/**
 * The daemon's control socket. One line in, one line out (see protocol.ts). A request never
 * crashes the daemon: bad JSON, unknown commands, oversized lines and throwing handlers all
 * become error replies. The socket is created mode 0600 in a 0700 directory (/run/dnsseal).
 * A socket file left by a dead daemon is replaced; one a live daemon answers on is not.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { type ControlHandlers, type ControlReply, MAX_REQUEST_BYTES } from './protocol.ts';

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

export interface ControlServerOptions {
  /** Longest request line accepted, bytes (default MAX_REQUEST_BYTES). */
  maxRequestBytes?: number;
  /** A connection with no traffic for this long is closed, ms (default 60000). */
  idleTimeoutMs?: number;
}

export async function startControlServer(
  path: string,
  handlers: ControlHandlers,
  log: Logger,
  opts: ControlServerOptions = {},
): Promise<ControlServer> {
  const maxBytes = opts.maxRequestBytes ?? MAX_REQUEST_BYTES;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const clog = log.child({ component: 'control' });
  prepareDirectory(path);
  await claimPath(path);

  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    // A client that connects and says nothing must not hold a connection forever.
    sock.setTimeout(idleMs, () => sock.destroy());
    serveConnection(sock, handlers, clog, maxBytes);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(path, err)));
    server.listen(path, () => resolve());
  });
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    server.close();
    throw new DnssealError('control', 'socket_mode', `cannot set mode 0600 on ${path}: ${errorMessage(err)}`, { cause: err });
  }
  server.on('error', (err) => clog.error('control socket error', { error: errorMessage(err) }));
  clog.info('control socket listening', { path });

  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
          resolve();
        });
      }),
  };
}

function prepareDirectory(path: string): void {
  const dir = dirname(path);
  try {
    // Only a directory we create gets 0700; an existing one (e.g. /tmp in tests) is left alone.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DnssealError('control', 'socket_dir', `cannot create ${dir} for the control socket: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Makes `path` free: absent, or a stale socket nobody answers on (removed). */
async function claimPath(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // absent
  }
  if (!isSocket) {
    throw new DnssealError(
      'control',
      'path_in_use',
      `${path} exists and is not a socket; remove it or choose another control path (--control)`,
    );
  }
  if (await answers(path)) {
    throw new DnssealError('control', 'already_running', `another dnsseal is running (control socket ${path} answers)`);
  }
  unlinkSync(path); // left behind by a daemon that died
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function listenError(path: string, err: unknown): DnssealError {
  return new DnssealError('control', 'listen_failed', `cannot listen on ${path}: ${errorMessage(err)}`, { cause: err });
}

function serveConnection(sock: Socket, handlers: ControlHandlers, log: Logger, maxBytes: number): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  // Requests on one connection are answered in order.
  let chain: Promise<void> = Promise.resolve();
  const send = (reply: ControlReply) => {
    if (!sock.destroyed) sock.write(encodeReply(reply));
  };

  sock.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const part = chunk.subarray(start, nl);
      start = nl + 1;
      if (pendingBytes + part.length > maxBytes) return tooLarge();
      const line = Buffer.concat([...pending, part]).toString('utf8');
      pending = [];
      pendingBytes = 0;
      if (line.trim() === '') continue;
      chain = chain.then(async () => send(await handleLine(line, handlers, log)));
    }
    const rest = chunk.subarray(start);
    if (pendingBytes + rest.length > maxBytes) return tooLarge();
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  });
  sock.on('error', (err) => log.debug('control connection error', { error: errorMessage(err) }));

  function tooLarge(): void {
    pending = [];
    pendingBytes = 0;
    sock.removeAllListeners('data');
    chain = chain.then(() => {
      send({ ok: false, error: { code: 'request_too_large', message: `control: request longer than ${maxBytes} bytes` } });
      sock.end();
    });
  }
}

export async function handleLine(line: string, handlers: ControlHandlers, log: Logger): Promise<ControlReply> {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch (err) {
    return fail('bad_request', `control: request is not JSON: ${errorMessage(err)}`);
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return fail('bad_request', 'control: request must be a JSON object');
  const { cmd, args } = req as { cmd?: unknown; args?: unknown };
  if (typeof cmd !== 'string') return fail('bad_request', 'control: request needs a string "cmd"');
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    return fail('bad_request', 'control: "args" must be a JSON object');
  }
  if (!Object.hasOwn(handlers, cmd)) {
    return fail('unknown_command', `control: unknown command ${JSON.stringify(cmd)} (known: ${Object.keys(handlers).sort().join(', ')})`);
  }
  try {
    const result = await handlers[cmd]!((args ?? {}) as Record<string, unknown>);
    return { ok: true, result: result ?? null };
  } catch (err) {
    if (err instanceof DnssealError) return fail(err.code, err.message);
    log.error('control handler failed', { cmd, error: errorMessage(err) });
    return fail('internal', `control: ${cmd} failed: ${errorMessage(err)}`);
  }
}

function fail(code: string, message: string): ControlReply {
  return { ok: false, error: { code, message } };
}

function encodeReply(reply: ControlReply): string {
  try {
    return JSON.stringify(reply) + '\n';
  } catch (err) {
    return JSON.stringify(fail('internal', `control: reply is not serialisable: ${errorMessage(err)}`)) + '\n';
  }
}
