/** Small builders shared by the policy tests: a Config with only what the policy reads. */
import type { Config } from '../../src/config/types.ts';
import type { ChannelSpec, Table } from '../../src/policy/types.ts';
import { parseCondition } from '../../src/policy/condition.ts';
import { buildChannel } from '../../src/policy/channel.ts';
import { tableGroup } from '../../src/policy/group.ts';
import { settingDefaults } from '../../src/config/defaults.ts';

export function table(id: string, rules: Array<[pattern: string, channel: string, upstream?: string]>): Table {
  return {
    id,
    group: tableGroup(id),
    rules: rules.map(([p, channel, upstream], index) => ({
      condition: parseCondition(p),
      channel,
      index,
      ...(upstream ? { upstream } : {}),
    })),
  };
}

export function channels(...specs: Array<[name: string, input: Record<string, unknown>]>): ChannelSpec[] {
  return specs.map(([name, input], i) => buildChannel(name, input, i + 1));
}

export function config(parts: Partial<Config>): Config {
  return {
    ...settingDefaults(),
    source: '<test>',
    mode: 'host',
    listen: ['127.0.0.1:53'],
    upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 5353 }] }],
    datapath: 'fake',
    lan: [],
    wan: [],
    control: '/tmp/dnsseal-test.sock',
    logLevel: 'info',
    logFormat: 'logfmt',
    minHoldS: 60,
    idleS: 300,
    upstreamTimeoutMs: 2000,
    canary: 'nxdomain',
    channels: [],
    tables: [],
    clients: [],
    statics: [],
    tsigKeys: [],
    interceptPools: [],
    ...parts,
  };
}
