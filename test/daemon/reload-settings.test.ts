/**
 * Each setting a reload applies live, with queries flowing (issue 12, "Live reload of
 * everything"): listen addresses (the new bound before the old close; no answer lost; an
 * address that cannot be bound refuses the reload and changes nothing), log level and format,
 * allow_clients (REFUSED, counted), log_queries (and `dnsseal log queries on|off`). In-process
 * daemon with the fake data path and no IPsec; loopback only.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { controlRequest } from '../../src/control/client.ts';
import { ask, freePort, QueryFlow, reloadLab, until, type ReloadLab } from './reload-lab.ts';

interface Opts {
  listen: string[];
  extra?: string;
}

const yaml =
  (o: Opts) =>
  (upstream: number, control: string): string =>
    [
      'mode: host',
      `listen: [${o.listen.join(', ')}]`,
      `upstreams: { default: 127.0.0.1:${upstream} }`,
      'datapath: fake',
      `control: ${control}`,
      'log_level: info',
      o.extra ?? '',
      'channels:',
      '  hub: { kind: tunnel, gateway: 192.0.2.1, esp: aes256gcm16 }',
      'tables:',
      '  default:',
      '    - { match: "*.corp.test", channel: hub }',
      '',
    ].join('\n');

const NAMES = ['www.public.test', 'app.corp.test', 'mail.public.test', 'git.corp.test'];

let lab: ReloadLab | undefined;
afterEach(async () => {
  await lab?.stop();
  lab = undefined;
});

/** Whether anything answers DNS on `port` (a closed one gets no answer within 300 ms). */
const answers = (port: number) =>
  ask(port, 'www.public.test', '127.0.0.1', 300).then(
    () => true,
    () => false,
  );

/** Whether `port` is free for UDP and TCP (binds both, then lets go): asks nothing of the daemon. */
async function free(port: number): Promise<boolean> {
  let u;
  try {
    u = await Bun.udpSocket({ hostname: '127.0.0.1', port });
    Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  } finally {
    u?.close();
  }
}

describe('daemon/reload of settings', () => {
  test('swaps listen addresses without losing an answer when queries flow during the reloads', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const text = (listen: number[]) => yaml({ listen: listen.map((p) => `127.0.0.1:${p}`) });
    lab = await reloadLab(text([a]));
    const flow = new QueryFlow(a, NAMES);
    await until('queries flowing', () => flow.count > 20);
    // add b: a keeps serving, untouched
    lab.write(text([a])(lab.upstream.port, lab.control).replace(`listen: [127.0.0.1:${a}]`, `listen: [127.0.0.1:${a}, 127.0.0.1:${b}]`));
    expect(await lab.reload()).toMatchObject({ listenAdded: 1, listenRemoved: 0, applied: ['listen'], restartNeeded: [] });
    expect((await ask(b, 'app.corp.test')).rcode).toBe('NOERROR');
    // then only b: a drains (its queries in flight still answered), the stream moves to b
    lab.write(text([b])(lab.upstream.port, lab.control));
    const at = flow.count;
    expect(await lab.reload()).toMatchObject({ listenAdded: 0, listenRemoved: 1 });
    flow.target = b;
    await until('queries answered on the new address', () => flow.count > at + 20);
    const r = await flow.stop();
    expect(r.answered).toBe(r.sent);
    expect(r.rcodes).toEqual({ NOERROR: r.sent });
    await until('the removed address closed', () => free(a));
    expect((await lab.status()).listen).toEqual([`udp://127.0.0.1:${b}`, `tcp://127.0.0.1:${b}`]);
  });

  test('refuses a reload whose new listen address cannot be bound, and changes nothing', async () => {
    const [a, c] = [await freePort(), await freePort()];
    lab = await reloadLab(yaml({ listen: [`127.0.0.1:${a}`] }));
    const flow = new QueryFlow(a, NAMES);
    // c binds first, then 192.0.2.1 (no local interface has it) fails: c must close again,
    // and the log level in the same file must not be applied either
    lab.write(yaml({ listen: [`127.0.0.1:${a}`, `127.0.0.1:${c}`, '192.0.2.1:53'], extra: 'log_level: debug' })(lab.upstream.port, lab.control).replace('log_level: info\n', ''));
    const err = await lab.refused();
    expect(err.code).toBe('reload_invalid');
    expect(err.message).toContain('cannot listen on 192.0.2.1:53');
    expect(err.message).toContain('the running config is unchanged');
    expect((await lab.status()).listen).toEqual([`udp://127.0.0.1:${a}`, `tcp://127.0.0.1:${a}`]);
    expect(await free(c)).toBe(true); // bound for the reload, closed again when it was refused
    lab.lines.length = 0;
    await ask(a, 'app.corp.test');
    expect(lab.lines.filter((l) => l.includes('level=debug'))).toEqual([]);
    const r = await flow.stop();
    expect(r.answered).toBe(r.sent);
  });

  test('logs at the new level and in the new format when log_level and log_format are reloaded', async () => {
    const a = await freePort();
    lab = await reloadLab(yaml({ listen: [`127.0.0.1:${a}`] }));
    const flow = new QueryFlow(a, NAMES);
    await ask(a, 'app.corp.test');
    expect(lab.lines.some((l) => l.includes('proxy: decision'))).toBe(false);
    lab.write(yaml({ listen: [`127.0.0.1:${a}`], extra: 'log_format: json' })(lab.upstream.port, lab.control).replace('log_level: info', 'log_level: debug'));
    expect(await lab.reload()).toMatchObject({ applied: ['log_level', 'log_format'] });
    lab.lines.length = 0;
    await ask(a, 'app.corp.test');
    const decision = lab.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'proxy: decision' && l.name === 'app.corp.test');
    expect(decision).toMatchObject({ level: 'debug', name: 'app.corp.test', channel: 'hub', table: 'default' });
    const r = await flow.stop();
    expect(r.answered).toBe(r.sent);
  });

  test('answers REFUSED to senders allow_clients leaves out, counts them, and admits them again after the next reload', async () => {
    const a = await freePort();
    lab = await reloadLab(yaml({ listen: [`127.0.0.1:${a}`] }));
    // the default admits loopback
    expect((await ask(a, 'www.public.test', '127.0.0.2')).rcode).toBe('NOERROR');
    const flow = new QueryFlow(a, NAMES, '127.0.0.1');
    lab.write(yaml({ listen: [`127.0.0.1:${a}`], extra: 'allow_clients: [127.0.0.1/32]' })(lab.upstream.port, lab.control));
    expect(await lab.reload()).toMatchObject({ applied: ['allow_clients'] });
    expect(await ask(a, 'app.corp.test', '127.0.0.2')).toEqual({ rcode: 'REFUSED', addrs: [] });
    expect(lab.d.info.counters.queries.refused).toBe(1);
    expect(lab.metrics.expose()).toContain('dnsseal_proxy_queries_total{outcome="refused"} 1');
    expect((await ask(a, 'www.public.test', '127.0.0.1')).rcode).toBe('NOERROR');
    lab.write(yaml({ listen: [`127.0.0.1:${a}`] })(lab.upstream.port, lab.control));
    await lab.reload();
    expect((await ask(a, 'www.public.test', '127.0.0.2')).rcode).toBe('NOERROR');
    const r = await flow.stop();
    expect(r.rcodes).toEqual({ NOERROR: r.sent });
  });

  test('writes one query line per query when log_queries is reloaded on, and stops with dnsseal log queries off', async () => {
    const a = await freePort();
    lab = await reloadLab(yaml({ listen: [`127.0.0.1:${a}`] }));
    const queryLines = () => lab!.lines.filter((l) => l.includes('msg=query '));
    await ask(a, 'app.corp.test');
    expect(queryLines()).toEqual([]);
    lab.write(yaml({ listen: [`127.0.0.1:${a}`], extra: 'log_queries: true' })(lab.upstream.port, lab.control));
    expect(await lab.reload()).toMatchObject({ applied: ['log_queries'] });
    const flow = new QueryFlow(a, NAMES);
    await until('a few queries answered', () => flow.count >= 40);
    const r = await flow.stop();
    expect(queryLines().length).toBe(r.answered);
    expect(queryLines().find((l) => l.includes('name=app.corp.test'))).toMatch(
      /msg=query client=127\.0\.0\.1 proto=udp name=app\.corp\.test type=A rcode=NOERROR upstream=default latency_ms=[\d.]+ cache=(?:true|false) table=default rule="\*\.corp\.test" channel=hub addrs=203\.0\.113\.\d/,
    );
    expect(await controlRequest(lab.control, { cmd: 'log', args: { what: 'queries', on: false } })).toEqual({ queries: false });
    const before = queryLines().length;
    await ask(a, 'app.corp.test');
    expect(queryLines().length).toBe(before);
    // a reload that leaves log_queries as it was does not switch it back on
    lab.write(yaml({ listen: [`127.0.0.1:${a}`], extra: 'log_queries: true' })(lab.upstream.port, lab.control).replace('log_level: info', 'log_level: warn'));
    expect(await lab.reload()).toMatchObject({ applied: ['log_level'] });
    await ask(a, 'app.corp.test');
    expect(queryLines().length).toBe(before);
  });
});
