/**
 * PLACEHOLDER (owned by the registry/control work, #2/#7): one request over the control
 * socket (`/run/dnsseal/control.sock`), newline-delimited JSON, returns the reply's `result`.
 */
import { DnssealError } from '../util/errors.ts';

export interface ControlRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

export async function controlRequest(_socketPath: string, _req: ControlRequest): Promise<unknown> {
  throw new DnssealError('control', 'not_implemented', 'the control client is not wired yet');
}
