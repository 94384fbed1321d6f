/**
 * The control socket protocol: newline-delimited JSON over a unix socket (mode 0600).
 *   request:  {"cmd":"list","args":{"channel":"hub"}}\n
 *   reply:    {"ok":true,"result":…}\n   or   {"ok":false,"error":{"code":"…","message":"…"}}\n
 * A connection may carry several requests; replies come back in request order.
 * The CLI and the daemon both import these types, so the two cannot drift.
 */

export const DEFAULT_CONTROL_SOCKET = '/run/dnsseal/control.sock';

/** Largest request line the server reads; longer ones are refused and the connection closed. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface ControlRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: ControlErrorBody };

export type ControlHandler = (args: Record<string, unknown>) => Promise<unknown>;
export type ControlHandlers = Record<string, ControlHandler>;
