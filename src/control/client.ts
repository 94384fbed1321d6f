/**
 * One request over the control socket (`/run/dnsseal/control.sock`), newline-delimited JSON;
 * returns the reply's `result` or throws. The CLI's `list`, `status`, `flush`, `reload`,
 * `down` and `explain` all go through here.
 *   - no daemon (no socket, or nobody listening) → DnssealError code `not_running`
 *   - socket not accessible                        → `permission_denied`
 *   - no reply in time                             → `timeout`
 *   - the daemon answered with an error            → ControlReplyError with the daemon's code
 */
import { createConnection } from 'node:net';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { ControlReply, ControlRequest } from './protocol.ts';

export type { ControlRequest } from './protocol.ts';

export interface ControlRequestOptions {
  /** How long to wait for the reply, ms (default 10000). */
  timeoutMs?: number;
}

/** An error the daemon replied with; its message is the daemon's, already component-prefixed. */
export class ControlReplyError extends DnssealError {
  constructor(code: string, message: string) {
    super('control', code, message);
    this.name = 'ControlReplyError';
    this.message = message;
  }
}

export function controlRequest(socketPath: string, req: ControlRequest, opts: ControlRequestOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let done = false;
    const chunks: Buffer[] = [];
    const sock = createConnection({ path: socketPath });
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new DnssealError('control', 'timeout', `no reply from the daemon on ${socketPath} within ${timeoutMs} ms`))),
      timeoutMs,
    );

    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: Buffer) => {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      const line = Buffer.concat(chunks).toString('utf8');
      finish(() => {
        try {
          resolve(unwrap(JSON.parse(line) as ControlReply));
        } catch (err) {
          reject(err instanceof DnssealError ? err : protocolError(`reply is not JSON: ${errorMessage(err)}`));
        }
      });
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish(() => reject(connectError(socketPath, err))));
    sock.on('close', () => finish(() => reject(protocolError(`the daemon on ${socketPath} closed the connection without a reply`))));
  });
}

function unwrap(reply: ControlReply): unknown {
  if (typeof reply !== 'object' || reply === null || typeof reply.ok !== 'boolean') throw protocolError('reply has no "ok" field');
  if (reply.ok) return reply.result;
  const e = reply.error ?? { code: 'unknown', message: 'control: the daemon reported an error without details' };
  throw new ControlReplyError(String(e.code), String(e.message));
}

function protocolError(message: string): DnssealError {
  return new DnssealError('control', 'protocol', message);
}

function connectError(path: string, err: NodeJS.ErrnoException): DnssealError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return new DnssealError('control', 'not_running', `dnsseal is not running (no daemon answers on ${path})`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new DnssealError('control', 'permission_denied', `permission denied on ${path} (the control socket is root-only; run as root)`, {
        cause: err,
      });
    default:
      return new DnssealError('control', 'connect_failed', `cannot reach the daemon on ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
