/**
 * The small parts a reload applies live (see live-config.ts), each owning its keys:
 *
 * - `listen`: new addresses are bound in `prepare` (one that cannot bind refuses the reload,
 *   and those just bound close again), the set swaps in `apply`, and removed addresses close
 *   after the reload, draining (their clients' answers still go out; src/proxy/listener-set.ts);
 * - `log`: `log_level` and `log_format` of the daemon's logger (and of the query log);
 * - `allow_clients`: the access list the pipeline admits senders by (src/proxy/client-acl.ts);
 * - `log_queries`: the query log (src/proxy/query-log.ts); `dnsseal log queries on|off` switches
 *   it too, and a reload only changes it when the setting in the file changed.
 */
import { allowedClients, ClientAcl } from '../proxy/client-acl.ts';
import type { ListenerChange, ListenerSet } from '../proxy/listener-set.ts';
import type { QueryLog } from '../proxy/query-log.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger, LogSettings } from '../util/log.ts';
import type { LivePart } from './live-config.ts';

export function listenPart(listeners: ListenerSet, log: Logger): LivePart<ListenerChange> {
  return {
    name: 'listen',
    owns: ['listen'],
    prepare: (_running, next) => listeners.prepare(next.listen),
    abort: (c) => listeners.abort(c),
    apply: (c) => listeners.commit(c),
    rollback: (c) => listeners.rollback(c),
    settle: (c) => {
      if (c.added.length > 0) log.info('daemon: listening on new addresses', { listen: c.added.map((b) => b.spec).join(',') });
      // in the background: the reply need not wait for the last answers of removed addresses
      listeners.settle(c).catch((err) => log.warn('daemon: closing a removed listen address failed', { err: errorMessage(err) }));
      return { listenAdded: c.added.length, listenRemoved: c.removed.length };
    },
  };
}

export function logPart(log: Logger): LivePart<{ before: LogSettings; after: LogSettings }> {
  return {
    name: 'log',
    owns: ['logLevel', 'logFormat'],
    prepare: (running, next) => ({ before: { level: running.logLevel, format: running.logFormat }, after: { level: next.logLevel, format: next.logFormat } }),
    apply: (p) => log.configure(p.after),
    rollback: (p) => log.configure(p.before),
  };
}

export interface AccessPartDeps {
  acl: ClientAcl;
  /** The LAN prefixes `allow_clients` stands for by default (read when it is needed). */
  lanPrefixes: () => string[];
}

export function accessPart(deps: AccessPartDeps): LivePart<{ before: string[]; after: string[] }> {
  return {
    name: 'allow_clients',
    owns: ['allowClients'],
    prepare: (_running, next) => {
      const after = allowedClients(next.allowClients, deps.lanPrefixes);
      new ClientAcl(after); // every CIDR parses, or the reload is refused here
      return { before: deps.acl.cidrs, after };
    },
    apply: (p) => deps.acl.set(p.after),
    rollback: (p) => deps.acl.set(p.before),
  };
}

export function queryLogPart(queryLog: QueryLog): LivePart<{ before: boolean; after: boolean }> {
  return {
    name: 'log_queries',
    owns: ['logQueries'],
    prepare: (_running, next) => ({ before: queryLog.on, after: next.logQueries }),
    apply: (p) => queryLog.set(p.after),
    rollback: (p) => queryLog.set(p.before),
  };
}
