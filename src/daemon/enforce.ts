/**
 * `enforce_dns` in the running daemon (src/datapath/dns-enforce.ts does the kernel part): the
 * table is made what the config says once the proxy listens (its real addresses are the redirect
 * targets), a reload changes the mode live, and the counters become
 * `dnsseal_enforce_dns_packets_total{action,protocol}`. A daemon that stops leaves the table in
 * place (like the pins: clients still cannot go around dnsseal while it restarts); `down` removes it.
 */
import type { Config } from '../config/types.ts';
import { ENFORCE_COUNTERS, type DnsEnforcer, type EnforceCounterName, type EnforcePlan } from '../datapath/dns-enforce.ts';
import type { Metrics } from '../ops/metrics.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { applyOrRestore, type LivePart } from './live-config.ts';

export interface EnforceDeps {
  enforcer: DnsEnforcer;
  log: Logger;
  metrics: Metrics;
  /** The proxy's bound listen addresses (`ADDR:PORT`), the redirect targets. */
  listening: () => string[];
}

export class Enforce {
  private exported = false;

  constructor(private readonly deps: EnforceDeps) {}

  private planOf(mode: Config['enforceDns'], cfg: Pick<Config, 'lan'>): EnforcePlan {
    return { mode, lan: cfg.lan, listen: this.deps.listening() };
  }

  /**
   * Applies the configured mode at start. `off` clears a table an earlier run left (best effort:
   * a failure is logged, not fatal — nothing is enforced either way); any other mode must be
   * installed or the start fails (the operator asked for it).
   */
  start(cfg: Config): void {
    const { enforcer, log } = this.deps;
    if (cfg.enforceDns === 'off') {
      try {
        const removed = enforcer.remove();
        if (removed.length) log.info('enforce_dns: off; removed the table an earlier run left', { removed: removed.join(',') });
      } catch (err) {
        log.warn('enforce_dns: off, but the table of an earlier run could not be checked or removed', { err: errorMessage(err) });
      }
      return;
    }
    this.set(this.planOf(cfg.enforceDns, cfg));
    log.info('enforce_dns: LAN DNS to other resolvers is enforced', { mode: cfg.enforceDns, lan: cfg.lan.join(','), listen: this.deps.listening().join(',') });
  }

  /**
   * The reload part: `enforce_dns` changes live, and the redirect follows the listen addresses
   * a reload bound (the `listen` part applies first; the plan is made when this one applies).
   * `lan` needs a restart.
   */
  part(): LivePart<{ before: EnforcePlan; mode: Config['enforceDns']; lan: string[] }> {
    return {
      name: 'enforce_dns',
      owns: ['enforceDns'],
      reads: ['listen'],
      prepare: (running, next) => ({ before: this.planOf(running.enforceDns, running), mode: next.enforceDns, lan: running.lan }),
      apply: (p) => {
        if (p.before.mode === 'off' && p.mode === 'off') return; // nothing enforced, nothing to follow
        const after = this.planOf(p.mode, { lan: p.lan });
        applyOrRestore(
          () => this.set(after),
          () => this.set(p.before),
        );
      },
      rollback: (p) => {
        if (p.before.mode !== 'off' || p.mode !== 'off') this.set(p.before);
      },
    };
  }

  private set(plan: EnforcePlan): void {
    this.deps.enforcer.apply(plan);
    if (plan.mode !== 'off') this.exportCounters();
  }

  /** Registered once, the first time a mode is on; reads nothing while the table is off. */
  private exportCounters(): void {
    if (this.exported) return;
    this.exported = true;
    const { enforcer, log, metrics } = this.deps;
    const g = metrics.gauge(
      'dnsseal_enforce_dns_packets_total',
      'LAN DNS that went around dnsseal, redirected or dropped by enforce_dns (nftables counters), by action and protocol (dns, dot, doq)',
    );
    let failing = false;
    metrics.onCollect(() => {
      try {
        const counts = enforcer.counts();
        for (const [name, labels] of Object.entries(ENFORCE_COUNTERS)) g.set(counts[name as EnforceCounterName].packets, labels);
        failing = false;
      } catch (err) {
        if (!failing) log.warn('enforce_dns: cannot read the nftables counters', { err: errorMessage(err) });
        failing = true;
      }
    });
  }
}
