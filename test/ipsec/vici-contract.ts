/**
 * The shared VICI suite: the same cases run against FakeCharon (vici-client.test.ts) and
 * against a real charon in a namespace (vici-client.priv.test.ts), so the fake cannot drift
 * from charon's behaviour or its error messages.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ViciCommandError } from '../../src/ipsec/vici-api.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { rejection, until } from './helpers.ts';

export interface ViciTarget {
  socketPath: string;
  /** An address charon can send to but where nothing answers IKE. */
  unreachableAddr: string;
  /** Kill charon and bring it back on the same socket path, state lost. */
  restart(): Promise<void>;
  teardown(): Promise<void>;
}

const conn = (remote: string, child: string, extra: Record<string, unknown> = {}) => ({
  version: '2',
  remote_addrs: [remote],
  local: { auth: 'pubkey', id: 'router.test' },
  remote: { auth: 'pubkey', id: 'peer.test' },
  children: { [child]: { mode: 'transport', esp_proposals: ['aes256gcm16'], mark_out: '0x5e510001/0xffffffff', ...extra } },
});

export function viciContract(backend: string, setup: () => Promise<ViciTarget>): void {
  describe(`ipsec/vici-client against ${backend}`, () => {
    let target: ViciTarget;
    let vici: ViciClient;

    beforeAll(async () => {
      target = await setup();
      vici = new ViciClient({ socketPath: target.socketPath, timeoutMs: 5_000 });
    });
    afterAll(async () => {
      vici?.close();
      await target?.teardown();
    });

    test('reports the daemon and version when asked for version', async () => {
      const v = await vici.version();
      expect(v.daemon).toBe('charon');
      expect(String(v.version)).toMatch(/^5\./);
    });

    test('lists a connection with its addresses and children when loaded, and not when unloaded', async () => {
      await vici.loadConn('dnsseal-contract', conn('192.0.2.7', 'dnsseal-contract'));
      const listed = await vici.listConns({ ike: 'dnsseal-contract' });
      expect(listed.length).toBe(1);
      const c = listed[0]!['dnsseal-contract'] as Record<string, any>;
      expect(c.remote_addrs).toEqual(['192.0.2.7']);
      expect(c.children['dnsseal-contract'].mode).toBe('TRANSPORT');
      expect(await vici.getConns()).toContain('dnsseal-contract');
      await vici.unloadConn('dnsseal-contract');
      expect(await vici.listConns({ ike: 'dnsseal-contract' })).toEqual([]);
      expect(await vici.getConns()).not.toContain('dnsseal-contract');
    });

    test.each<[string, Record<string, unknown>, string]>([
      ['an unknown ESP algorithm', conn('192.0.2.7', 'c', { esp_proposals: ['foo128'] }), 'invalid value for: esp_proposals, config discarded'],
      ['an unknown option', { ...conn('192.0.2.7', 'c'), bogus: 'x' }, 'unknown option: bogus, config discarded'],
      ['an unknown child option', conn('192.0.2.7', 'c', { bogus_ts: 'x' }), 'unknown option: bogus_ts, config discarded'],
    ])('surfaces charon errmsg when load-conn has %s', async (_what, body, errmsg) => {
      const e = await rejection(vici.loadConn('dnsseal-bad', body as never));
      expect(e).toBeInstanceOf(ViciCommandError);
      expect(e.code).toBe('vici_command_failed');
      expect(e.message).toBe(`vici: load-conn failed: ${errmsg}`);
      expect(await vici.getConns()).not.toContain('dnsseal-bad');
    });

    test('installs and uninstalls a trap policy when the child exists', async () => {
      await vici.loadConn('dnsseal-trap', conn('192.0.2.8', 'dnsseal-trap'));
      await vici.install({ child: 'dnsseal-trap', ike: 'dnsseal-trap' });
      await vici.uninstall({ child: 'dnsseal-trap' });
      const e = await rejection(vici.uninstall({ child: 'dnsseal-trap' }));
      expect(e.message).toBe("vici: uninstall failed: policy 'dnsseal-trap' not found");
      await vici.unloadConn('dnsseal-trap');
    });

    test.each<[string, (v: ViciClient) => Promise<unknown>, string]>([
      ['unload-conn names no loaded connection', (v) => v.unloadConn('dnsseal-nope'), "unload-conn failed: unload: connection 'dnsseal-nope' not found"],
      ['install names no child', (v) => v.install({ child: 'dnsseal-nope' }), 'install failed: configuration name not found'],
      ['initiate names no child', (v) => v.initiate({ child: 'dnsseal-nope', timeoutMs: 1000 }), "initiate failed: CHILD_SA config 'dnsseal-nope' not found"],
      ['terminate matches no SA', (v) => v.terminate({ ike: 'dnsseal-nope', timeoutMs: -1 }), 'terminate failed: no matching SAs to terminate found'],
    ])('rejects with charon errmsg when %s', async (_what, call, msg) => {
      const e = await rejection(call(vici));
      expect(e.message).toBe(`vici: ${msg}`);
    });

    test('rejects with vici_unknown_command when the command does not exist', async () => {
      const e = await rejection(vici.request('dnsseal-frobnicate', {}));
      expect(e.code).toBe('vici_unknown_command');
      // the connection stays usable
      expect((await vici.version()).daemon).toBe('charon');
    });

    test('answers every command in order when many are queued at once', async () => {
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          (i % 2 ? vici.version() : vici.getConns()).then(() => order.push(i)),
        ),
      );
      expect(order).toEqual(Array.from({ length: 25 }, (_, i) => i));
    });

    test('rejects after charon own timeout when the peer never answers', async () => {
      await vici.loadConn('dnsseal-silent', conn(target.unreachableAddr, 'dnsseal-silent'));
      const t0 = Date.now();
      const e = await rejection(vici.initiate({ child: 'dnsseal-silent', ike: 'dnsseal-silent', timeoutMs: 400 }));
      expect(e.message).toBe("vici: initiate failed: CHILD_SA 'dnsseal-silent' not established after 400ms");
      expect(Date.now() - t0).toBeLessThan(2_000);
      // other commands were not held up by the initiate: it ran on a connection of its own
      await vici.terminate({ ike: 'dnsseal-silent', timeoutMs: -1 });
      await vici.unloadConn('dnsseal-silent');
    });

    test('reconnects and re-registers events when charon restarts', async () => {
      let reconnected = 0;
      const links: boolean[] = [];
      // counts the event connection coming back after it was lost
      const off = vici.onLink((up) => {
        if (up && links.at(-1) === false) reconnected++;
        links.push(up);
      });
      const unsub = vici.subscribe('ike-updown', () => {});
      await vici.loadConn('dnsseal-gone', conn('192.0.2.9', 'dnsseal-gone'));
      // the restart must come after the event connection is up (and registered), or there is no loss to see
      await until(() => links.includes(true), undefined, 'the VICI event connection');
      await target.restart();
      // the first command after a restart may meet the dead socket; it must not hang
      const first = await vici.version().catch((e: DnssealError) => e);
      if (first instanceof DnssealError) expect(['vici_disconnected', 'vici_io']).toContain(first.code);
      expect((await vici.version()).daemon).toBe('charon');
      await until(() => reconnected > 0, 10_000, 'the event connection to come back after the restart');
      // a restarted charon forgot what was loaded: that is why the owner hears the link come back
      expect(await vici.getConns()).not.toContain('dnsseal-gone');
      off();
      unsub();
    });
  });
}
