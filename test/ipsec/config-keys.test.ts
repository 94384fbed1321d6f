/**
 * The IPsec settings of the config (`vici_socket`, `local_id`, `local_ts` and their flags):
 * defaults, file values, flags winning, errors located at the line or flag, and the reference.
 * (Kept next to the ipsec tests that use them; daemon-options.test.ts runs a daemon with them.)
 */
import { describe, expect, test } from 'bun:test';
import { loadConfig } from '../../src/config/load.ts';
import { parseArgs } from '../../src/config/flags.ts';
import { renderReference } from '../../src/config/reference.ts';
import { configError, deps, loadWith } from '../config/fixtures.ts';

const BASE = `mode: gateway
lan: [lan0]
wan: [wan0]
upstreams: {default: 192.0.2.53}
`;

const load = loadWith;

describe('config: ipsec keys', () => {
  test('defaults to charon\'s socket, no local id and derived selectors when nothing is set', () => {
    const c = load(BASE);
    expect(c.viciSocket).toBe('/var/run/charon.vici');
    expect(c.localId).toBeUndefined();
    expect(c.localTs).toEqual([]);
  });

  test('reads vici_socket, local_id and local_ts when the file sets them', () => {
    const c = load(`${BASE}vici_socket: /run/lab/charon.vici
local_id: router.corp.example
local_ts:
  - 10.1.0.0/16
  - dynamic
  - "fd00:1::/64"
`);
    expect(c.viciSocket).toBe('/run/lab/charon.vici');
    expect(c.localId).toBe('router.corp.example');
    expect(c.localTs).toEqual(['10.1.0.0/16', 'dynamic', 'fd00:1::/64']);
  });

  test('the flags win over the file when both are given', () => {
    const c = load(`${BASE}vici_socket: /run/a.vici\nlocal_id: a.test\nlocal_ts: [10.1.0.0/16]\n`, ['vici-socket', '/run/b.vici'], ['local-id', 'b.test'], ['local-ts', '10.2.0.0/16'], ['local-ts', '10.3.0.0/16']);
    expect(c.viciSocket).toBe('/run/b.vici');
    expect(c.localId).toBe('b.test');
    expect(c.localTs).toEqual(['10.2.0.0/16', '10.3.0.0/16']);
  });

  test('a single local_ts scalar is a one-item list when written without brackets', () => {
    expect(load(`${BASE}local_ts: dynamic\n`).localTs).toEqual(['dynamic']);
  });

  test.each([
    ['local_ts: [lan0]', 'dnsseal.yaml:5', '"lan0" is not an IPv4 or IPv6 address'],
    ['local_ts:\n  - 10.1.0.0/16\n  - 10.1.0.1/16', 'dnsseal.yaml:7', 'host bits set'],
    ['vici_socket: ""', 'dnsseal.yaml:5', 'vici_socket must be a non-empty string'],
    ['local_id: [a.test, b.test]', 'dnsseal.yaml:5', 'local_id must be a non-empty string'],
    ['vici_sockt: /x', 'dnsseal.yaml:5', 'vici_sockt'],
  ])('reports %p at its line when the value is wrong', (extra, where, msg) => {
    const e = configError(() => load(`${BASE}${extra}\n`));
    expect(e.message).toContain(where);
    expect(e.message).toContain(msg);
  });

  test.each([
    [['local-ts', 'eth0'] as [string, string], '--local-ts', 'not an IPv4 or IPv6 address'],
    [['vici-socket', ''] as [string, string], '--vici-socket', 'needs a path'],
    [['local-id', ''] as [string, string], '--local-id', 'needs an identity'],
  ])('reports the flag %p when its value is wrong', (flag, where, msg) => {
    const e = configError(() => load(BASE, flag));
    expect(e.where).toBe(where);
    expect(e.message).toContain(msg);
  });

  test('parses the flags from argv for dnsseal run when given on the command line', () => {
    const a = parseArgs(['run', '--vici-socket', '/tmp/c.vici', '--local-id=router.test', '--local-ts', '10.1.0.0/24', '--local-ts', 'dynamic']);
    expect(a.values.get('vici-socket')).toEqual(['/tmp/c.vici']);
    expect(a.values.get('local-id')).toEqual(['router.test']);
    expect(a.values.get('local-ts')).toEqual(['10.1.0.0/24', 'dynamic']);
    const c = loadConfig(new Map([...a.values, ['config', ['none']], ['upstream', ['192.0.2.53']]]), deps());
    expect([c.viciSocket, c.localId, c.localTs]).toEqual(['/tmp/c.vici', 'router.test', ['10.1.0.0/24', 'dynamic']]);
  });

  test('the reference lists the keys and flags when rendered', () => {
    const ref = renderReference();
    for (const s of ['`vici_socket`', '`--vici-socket`', '`local_id`', '`--local-id`', '`local_ts`', '`--local-ts`', '/var/run/charon.vici']) expect(ref).toContain(s);
  });
});
