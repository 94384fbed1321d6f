/**
 * The reload transaction without sockets: given the running config and a new one, which keys
 * changed, which parts apply them and which need a restart (by name); a new config that cannot
 * be applied changes nothing (what was prepared is aborted); a part that fails rolls back the
 * ones before it; reloads run one at a time.
 */
import { describe, expect, test } from 'bun:test';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { LiveConfig, planReload, type LivePart } from '../../src/daemon/live-config.ts';
import { LivePolicy, channelsPart, policyPart } from '../../src/daemon/live-parts.ts';
import { logPart, queryLogPart } from '../../src/daemon/live-settings.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { QueryLog } from '../../src/proxy/query-log.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { Policy } from '../../src/policy/policy.ts';
import { Registry } from '../../src/registry/registry.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';

const BASE = `
mode: host
# (a line the mode change below fills: rules keep their file:line)
listen: [127.0.0.1:5399]
upstreams: { default: 127.0.0.1:53, corp: 127.0.0.2:53 }
datapath: fake
log_level: info
channels:
  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }
  partner: { kind: peer, esp: aes256gcm16 }
tables:
  default:
    - { match: "*.corp.example", channel: hub }
`;

const load = (text: string): Config => loadConfigText(text, 'dnsseal.yaml', new Map(), { readFile: () => '', resolvTexts: () => [] });
const base = load(BASE);
/** BASE with one line replaced (`from` must occur), or with lines appended. */
const edit = (from: string, to: string): Config => {
  if (!BASE.includes(from)) throw new Error(`not in BASE: ${from}`);
  return load(BASE.replace(from, to));
};
const append = (extra: string): Config => load(BASE + extra);

/** The daemon's parts over a fake data path and a registry (nothing is opened; no listen part). */
function daemonParts(running: Config) {
  const clock = new FakeClock();
  const dp = new FakeDatapath({ clock });
  const registry = new Registry({ datapath: dp, clock, log: silentLogger, metrics: new Metrics(), minHoldMs: 60_000, idleMs: 300_000, channels: running.channels });
  const policy = new LivePolicy(Policy.fromConfig(running));
  const lines: string[] = [];
  const log = createLogger({ level: running.logLevel, write: (l) => void lines.push(l) });
  const queryLog = new QueryLog(log, running.logQueries);
  const ipsec = new NoIpsec(running.channels);
  const parts = [
    logPart(log),
    queryLogPart(queryLog),
    channelsPart({ registry, ipsec, allChannels: (l) => l, pushChannels: (l) => dp.setChannels(l.map((c) => ({ id: c.id, mark: c.mark, up: false }))) }),
    policyPart({ registry, datapath: dp, policy, serverChannels: false }),
  ];
  return { dp, registry, policy, parts, log, lines, queryLog, ipsec, live: new LiveConfig(running, parts) };
}

/** The rejection of `p` (fails the test when it resolves). */
async function refusal(p: Promise<unknown>): Promise<DnssealError> {
  return p.then(
    () => {
      throw new Error('expected the reload to be refused');
    },
    (e: DnssealError) => e,
  );
}

describe('daemon/live-config', () => {
  test.each([
    ['nothing changed', base, [], []],
    ['a rule added', append('    - { match: "www.test", channel: partner }\n'), [{ name: 'policy', keys: ['tables'] }], []],
    ['a static added', append('static:\n  - { cidr: 198.51.100.0/24, channel: hub }\n'), [{ name: 'policy', keys: ['statics'] }], []],
    // (host mode refuses clients at load; the planner is pure, so the config is edited directly)
    ['a client entry added', { ...base, clients: [{ cidr: '10.0.0.0/8', table: 'default' }] }, [{ name: 'policy', keys: ['clients'] }], []],
    ['a channel changed', edit('gateway: 192.0.2.1', 'gateway: 192.0.2.2'), [{ name: 'channels', keys: ['channels'] }, { name: 'policy', keys: ['channels'] }], []],
    ['the upstream timeout changed', append('upstream_timeout: 1500\n'), [], ['upstreamTimeoutMs']],
    ['an upstream changed', edit('corp: 127.0.0.2:53', 'corp: 127.0.0.3:53'), [], ['upstreams']],
    ['the listen address changed (no listen part here)', edit('listen: [127.0.0.1:5399]', 'listen: [127.0.0.1:5400]'), [], ['listen']],
    ['the log level changed', edit('log_level: info', 'log_level: debug'), [{ name: 'log', keys: ['logLevel'] }], []],
    ['the query log was switched on', append('log_queries: true\n'), [{ name: 'log_queries', keys: ['logQueries'] }], []],
    ['the mode changed', edit('mode: host\n# (a line the mode change below fills: rules keep their file:line)', 'mode: gateway\nlan: [lo]'), [], ['mode', 'lan']],
    ['the data path changed', edit('datapath: fake', 'datapath: none'), [], ['datapath']],
    [
      'a rule and the upstream timeout changed',
      load(BASE.replace('log_level: info', 'log_level: info\nupstream_timeout: 1500') + '    - { match: "www.test", channel: hub }\n'),
      [{ name: 'policy', keys: ['tables'] }],
      ['upstreamTimeoutMs'],
    ],
  ] as const)('plans which parts apply and which keys need a restart when %s', (_what, next, parts, restart) => {
    const plan = planReload(base, next as Config, daemonParts(base).parts);
    expect(plan.parts).toEqual(parts as unknown as typeof plan.parts);
    expect(plan.restartNeeded).toEqual([...restart]);
    // the merged config keeps every restart-only key at its running value
    for (const k of restart) expect(plan.merged[k]).toEqual(base[k]);
  });

  test('takes owned keys from the new config and keeps the others when merging', () => {
    const next = load(BASE.replace('log_level: info', 'log_level: debug\nupstream_timeout: 1500') + '    - { match: "www.test", channel: hub }\n');
    const plan = planReload(base, next, daemonParts(base).parts);
    expect(plan.merged.tables).toEqual(next.tables);
    expect(plan.merged.logLevel).toBe('debug');
    expect(plan.merged.upstreamTimeoutMs).toBe(base.upstreamTimeoutMs);
  });

  test('refuses two parts owning one key when built', () => {
    const part = (name: string): LivePart => ({ name, owns: ['tables'], prepare: () => null, apply: () => {}, rollback: () => {} });
    expect(() => new LiveConfig(base, [part('a'), part('b')])).toThrow('config key tables is applied by two parts (a, b)');
  });

  test('applies a new rule, runs the new config and withdraws entries no rule wants when reloaded', async () => {
    const { live, policy, registry } = daemonParts(base);
    const next = load(BASE.replace('"*.corp.example"', '"www.test"') + 'upstream_timeout: 1500\n');
    const before = policy.current;
    const { plan, figures } = await live.reload(next);
    expect(policy.current).not.toBe(before);
    expect(policy.decide('', ['www.test']).channel?.name).toBe('hub');
    expect(policy.decide('', ['a.corp.example']).channel).toBeNull();
    expect(live.config.tables).toEqual(next.tables);
    expect(live.config.upstreamTimeoutMs).toBe(base.upstreamTimeoutMs);
    expect(plan.restartNeeded).toEqual(['upstreamTimeoutMs']);
    expect(figures).toEqual({ released: 0, moved: 0, withdrawn: 0 });
    expect(registry.stats().statics).toBe(0);
  });

  test('changes nothing and says why when the new config names a channel that does not exist', async () => {
    const { live, policy } = daemonParts(base);
    const before = policy.current;
    const bad = load(BASE.replace('channel: hub', 'channel: partner')).tables;
    // a config the loader would refuse cannot be built by loadConfigText; forge one
    const next: Config = { ...base, tables: [{ ...bad[0]!, rules: bad[0]!.rules.map((r) => ({ ...r, channel: 'nosuch' })) }] };
    const err = await refusal(live.reload(next));
    expect(err.code).toBe('reload_invalid');
    expect(err.message).toContain('the running config is unchanged');
    expect(policy.current).toBe(before);
    expect(live.config).toBe(base);
  });

  test('changes the log level and format of the daemon logger when they changed in the file', async () => {
    const { live, log, lines } = daemonParts(base);
    log.debug('before');
    await live.reload(edit('log_level: info', 'log_level: debug\nlog_format: json'));
    log.debug('after', { n: 1 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'debug', msg: 'after', n: 1 });
    expect(log.settings()).toEqual({ level: 'debug', format: 'json' });
  });

  test('switches the query log on a reload only when log_queries changed in the file', async () => {
    const { live, queryLog } = daemonParts(base);
    queryLog.set(true); // `dnsseal log queries on` at run time
    await live.reload(append('    - { match: "www.test", channel: hub }\n'));
    expect(queryLog.on).toBe(true);
    const { live: live2, queryLog: ql2 } = daemonParts(base);
    await live2.reload(append('log_queries: true\n'));
    expect(ql2.on).toBe(true);
    await live2.reload(base);
    expect(ql2.on).toBe(false);
  });

  test('rolls the channels back and keeps the running policy when the policy cannot be applied', async () => {
    const { live, dp, policy } = daemonParts(base);
    const before = policy.current;
    // (a client entry in host mode is refused at load; the transaction is given it directly)
    const loaded = load(BASE.replace('partner: { kind: peer, esp: aes256gcm16 }', 'partner: { kind: peer, esp: aes256gcm16 }\n  extra: { kind: peer, esp: aes256gcm16 }'));
    const next: Config = { ...loaded, clients: [{ cidr: '10.0.0.0/8', table: 'default' }] };
    const setGroups = dp.setClientGroups.bind(dp);
    dp.setClientGroups = (entries) => {
      // the new config's client entry cannot be written; putting back the old (none) can
      if (entries.length > 0) throw new DnssealError('datapath', 'kernel', 'LPM update failed');
      setGroups(entries);
    };
    const err = await refusal(live.reload(next));
    expect(err.code).toBe('reload_failed');
    expect(err.message).toContain('could not apply policy');
    expect(err.message).toContain('LPM update failed');
    expect(err.message).not.toContain('putting the running state back also failed');
    expect(policy.current).toBe(before);
    expect(live.config).toBe(base);
    // the channel table is the running one again, in the data path and in the registry
    expect(dp.channels.map((c) => c.id)).toEqual(base.channels.map((c) => c.id));
    expect(dp.clientGroups).toEqual([]);
  });

  test('rolls back the parts applied before, last first, and aborts every prepared one when a later part fails', async () => {
    const calls: string[] = [];
    const part = (name: string, key: keyof Config, fail = false): LivePart<string> => ({
      name,
      owns: [key],
      prepare: async () => name,
      abort: (p) => void calls.push(`abort ${p}`),
      apply: (p) => {
        calls.push(`apply ${p}`);
        if (fail) throw new Error(`${p} broke`);
      },
      rollback: (p) => void calls.push(`rollback ${p}`),
      settle: () => void calls.push(`settle ${name}`),
    });
    const live = new LiveConfig(base, [part('a', 'tables'), part('b', 'statics'), part('c', 'clients', true)]);
    const next: Config = { ...base, tables: [], statics: [{ cidr: '192.0.2.0/24', channel: 'hub', table: 'default' }], clients: [{ cidr: '10.0.0.0/8', table: 'default' }] };
    expect((await refusal(live.reload(next))).message).toContain('could not apply c, the running config is unchanged: c broke');
    expect(calls).toEqual(['apply a', 'apply b', 'apply c', 'rollback b', 'rollback a', 'abort c', 'abort b', 'abort a']);
    expect(live.config).toBe(base);
  });

  test('applies no part and aborts the prepared ones when one fails to prepare', async () => {
    const calls: string[] = [];
    const ok: LivePart = { name: 'ok', owns: ['tables'], prepare: () => null, abort: () => void calls.push('abort ok'), apply: () => void calls.push('ok'), rollback: () => {} };
    const bad: LivePart = {
      name: 'bad',
      owns: ['statics'],
      prepare: async () => {
        throw new Error('no');
      },
      apply: () => void calls.push('bad'),
      rollback: () => {},
    };
    const live = new LiveConfig(base, [ok, bad]);
    expect((await refusal(live.reload({ ...base, tables: [], statics: [{ cidr: '192.0.2.0/24', channel: 'hub', table: 'default' }] }))).message).toContain('reload refused');
    expect(calls).toEqual(['abort ok']);
  });

  test('runs reloads one at a time, each against what the previous one left running', async () => {
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    const seen: string[] = [];
    const slow: LivePart<string> = {
      name: 'slow',
      owns: ['logLevel'],
      prepare: async (running, next) => {
        seen.push(`${running.logLevel}->${next.logLevel}`);
        if (next.logLevel === 'debug') await gate;
        return next.logLevel;
      },
      apply: () => {},
      rollback: () => {},
    };
    const live = new LiveConfig(base, [slow]);
    const first = live.reload({ ...base, logLevel: 'debug' });
    const second = live.reload((running) => ({ ...running, logLevel: 'warn' }));
    await Bun.sleep(0);
    expect(seen).toEqual(['info->debug']);
    open();
    await Promise.all([first, second]);
    expect(seen).toEqual(['info->debug', 'debug->warn']);
    expect(live.config.logLevel).toBe('warn');
  });

  test('reports a settle that failed and runs the new config regardless', async () => {
    const part: LivePart = {
      name: 'p',
      owns: ['logLevel'],
      prepare: () => null,
      apply: () => {},
      rollback: () => {},
      settle: async () => {
        throw new Error('unload failed');
      },
    };
    const live = new LiveConfig(base, [part]);
    const r = await live.reload({ ...base, logLevel: 'warn' });
    expect(r.settleErrors).toEqual(['p: unload failed']);
    expect(live.config.logLevel).toBe('warn');
  });
});
