/**
 * Local records on the running daemon (issue 12): answered without an upstream query, a
 * protected local name registered, and a reload (the config read in a worker, as `dnsseal run`
 * does) applying changed `hosts:` and an edited `hosts_file` at once, with queries flowing; a
 * hosts file that cannot be read refuses the reload and the running records stay.
 * In-process daemon with the fake data path and no IPsec; loopback only.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ask, freePort, QueryFlow, reloadLab, type ReloadLab } from './reload-lab.ts';

/** The config (and, beside it, the hosts file with `file`): the control socket sits in the lab's directory. */
const config =
  (port: number, hosts: string, file: string) =>
  (upstream: number, control: string): string => {
    writeFileSync(join(dirname(control), 'hosts'), file);
    return [
      'mode: host',
      `listen: [127.0.0.1:${port}]`,
      `upstreams: { default: 127.0.0.1:${upstream} }`,
      'datapath: fake',
      `control: ${control}`,
      'hosts_file: hosts',
      'hosts:',
      hosts,
      'channels:',
      '  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }',
      'tables:',
      '  default:',
      '    - { match: "nas.lan", channel: hub }',
      '',
    ].join('\n');
  };

let lab: ReloadLab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

const NAMES = ['router.lan', 'www.public.test', 'printer.lan', 'app.corp.test'];

describe('daemon hosts', () => {
  test('answers local names without asking the upstream, and applies edited hosts and hosts_file on reload while queries flow', async () => {
    const port = await freePort();
    lab = await reloadLab(config(port, '  router.lan: 192.168.1.1', '10.0.0.5 printer.lan\n'), { offThread: true });
    expect(await ask(port, 'Router.LAN')).toEqual({ rcode: 'NOERROR', addrs: ['192.168.1.1'] });
    expect(await ask(port, 'printer.lan')).toEqual({ rcode: 'NOERROR', addrs: ['10.0.0.5'] });
    expect(lab.upstream.queries.map((q) => q.name)).toEqual([]);

    const flow = new QueryFlow(port, NAMES);
    // router.lan moves; the file loses printer.lan and gains nas.lan, which a rule protects
    lab.write(config(port, '  router.lan: 192.168.1.2', '192.168.1.10 nas.lan\n')(lab.upstream.port, lab.control));
    expect(await lab.reload()).toMatchObject({ applied: ['hosts'], restartNeeded: [] });
    expect(await ask(port, 'router.lan')).toEqual({ rcode: 'NOERROR', addrs: ['192.168.1.2'] });
    expect(await ask(port, 'nas.lan')).toEqual({ rcode: 'NOERROR', addrs: ['192.168.1.10'] });
    // registered before it was released, like any protected answer
    expect(lab.d.info.registry.list().filter((e) => e.addr === '192.168.1.10').map((e) => [e.channel, e.names])).toEqual([['hub', ['nas.lan']]]);
    // not local any more: the upstream answers it
    expect((await ask(port, 'printer.lan')).addrs).toEqual(['198.51.100.7']);
    expect(lab.upstream.queries.map((q) => q.name)).toContain('printer.lan');
    expect(lab.upstream.queries.map((q) => q.name)).not.toContain('router.lan');
    const r = await flow.stop();
    expect(r.answered).toBe(r.sent);
    expect(r.rcodes).toEqual({ NOERROR: r.sent });
  });

  test('applies a new hosts_ttl and refuses a reload whose hosts file cannot be read, keeping the running records', async () => {
    const port = await freePort();
    lab = await reloadLab(config(port, '  router.lan: 192.168.1.1', '10.0.0.5 printer.lan\n'));
    lab.write(config(port, '  router.lan: 192.168.1.1', '10.0.0.5 printer.lan\n')(lab.upstream.port, lab.control) + 'hosts_ttl: 5\n');
    expect(await lab.reload()).toMatchObject({ applied: ['hosts_ttl'] });
    rmSync(join(lab.dir, 'hosts'));
    const e = await lab.refused();
    expect(e.message).toMatch(/dnsseal\.yaml:6: cannot read hosts file \S*\/hosts: no such file or directory/);
    expect(await ask(port, 'printer.lan')).toEqual({ rcode: 'NOERROR', addrs: ['10.0.0.5'] });
  });
});
