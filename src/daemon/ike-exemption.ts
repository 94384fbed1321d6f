/**
 * Wiring of the guard's IKE exemption (issue #11 item 7): when charon becomes reachable over VICI
 * (at start, and after each reconnect: a restarted charon has new sockets), find its UDP sockets
 * through /proc and have the data path tag exactly those. Off the DNS path; a failure is logged and
 * leaves charon's IKE to protected addresses dropped (fail closed), never exempts anything else.
 */
import type { Datapath } from '../datapath/datapath.ts';
import { findCharonSockets, type ProcFs, realProcFs } from '../ipsec/charon-sockets.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

export function ikeExemption(dp: Datapath, viciSocket: string, log: Logger, proc: ProcFs = realProcFs): (() => void) | undefined {
  if (!dp.setIkeSockets) return undefined;
  return () => {
    try {
      const found = findCharonSockets(viciSocket, proc);
      if (!found) {
        log.warn('ipsec: charon\'s process not found behind the VICI socket; its IKE to protected addresses is dropped until the next reconnect', { socket: viciSocket });
        return;
      }
      dp.setIkeSockets!(found.pid, found.fds);
    } catch (err) {
      log.error('ipsec: tagging charon\'s IKE sockets failed; its IKE to protected addresses is dropped', { err: errorMessage(err) });
    }
  };
}
