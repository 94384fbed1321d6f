/**
 * resolver-setup on temp trees (never the real /etc): backend detection, the resolved
 * drop-in and its address conflict, resolv.conf backup / rewrite / undo (a symlink stays a
 * symlink), idempotence, refusing to clobber what is not ours.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyResolverPlan,
  BACKUP,
  detectBackend,
  DROP_IN,
  lstatExists,
  planResolverSetup,
  RESOLV_CONF,
  undoResolverSetup,
} from '../../src/ops/resolver-setup.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ORIGINAL = '# from DHCP\nsearch lan.example\nnameserver 192.0.2.53\noptions edns0\n';

/** A root with etc/resolv.conf = ORIGINAL; `resolved`: with systemd-resolved's runtime dir. */
function tree(resolved = false): string {
  const root = mkdtempSync(join(tmpdir(), 'dnsseal-resolver-'));
  dirs.push(root);
  mkdirSync(join(root, 'etc'));
  if (resolved) {
    mkdirSync(join(root, 'run/systemd/resolve'), { recursive: true });
    writeFileSync(join(root, 'run/systemd/resolve/resolv.conf'), 'nameserver 198.51.100.7\n');
    writeFileSync(join(root, 'run/systemd/resolve/stub-resolv.conf'), 'nameserver 127.0.0.53\n');
    symlinkSync('../run/systemd/resolve/stub-resolv.conf', join(root, RESOLV_CONF));
  } else {
    writeFileSync(join(root, RESOLV_CONF), ORIGINAL);
  }
  return root;
}

describe('ops/resolver-setup', () => {
  test('detects systemd-resolved when its runtime dir exists or resolv.conf links into it', () => {
    expect(detectBackend(tree(true))).toBe('systemd-resolved');
    const linkOnly = tree(false);
    rmSync(join(linkOnly, RESOLV_CONF));
    symlinkSync('/run/systemd/resolve/stub-resolv.conf', join(linkOnly, RESOLV_CONF));
    expect(detectBackend(linkOnly)).toBe('systemd-resolved');
    expect(detectBackend(tree(false))).toBe('resolv.conf');
  });

  test.each(['127.0.0.53', '127.0.0.53:53', '127.0.0.54'])('refuses and proposes 127.0.0.153 when resolved runs and dnsseal would listen on %s', (listen) => {
    expect(() => planResolverSetup(tree(true), listen)).toThrow(/stub listeners own 127\.0\.0\.53 and 127\.0\.0\.54.*--listen 127\.0\.0\.153:53/);
  });

  test('refuses a listen port other than 53 when only resolv.conf can point at dnsseal', () => {
    expect(() => planResolverSetup(tree(false), '127.0.0.1:5353')).toThrow('resolv.conf has no port');
  });

  test('writes DNS=ADDR:PORT when resolved runs and dnsseal listens on another port', () => {
    expect(planResolverSetup(tree(true), '127.0.0.53:5353').writes[0]!.content).toMatch(/^DNS=127\.0\.0\.53:5353$/m);
  });

  test('writes a drop-in sending every domain to dnsseal when resolved runs', () => {
    const root = tree(true);
    const plan = planResolverSetup(root, '127.0.0.153:53');
    expect(plan.backend).toBe('systemd-resolved');
    expect(plan.notes.join('\n')).toContain("resolved's current upstreams: 198.51.100.7");
    expect(existsSync(join(root, DROP_IN))).toBe(false); // planning changes nothing
    applyResolverPlan(root, plan);
    const text = readFileSync(join(root, DROP_IN), 'utf8');
    expect(text).toMatch(/^\[Resolve\]$/m);
    expect(text).toMatch(/^DNS=127\.0\.0\.153$/m);
    expect(text).toMatch(/^Domains=~\.$/m);
    expect(readlinkSync(join(root, RESOLV_CONF))).toBe('../run/systemd/resolve/stub-resolv.conf'); // untouched
    expect(undoResolverSetup(root)).toEqual([`removed /${DROP_IN}`]);
    expect(existsSync(join(root, DROP_IN))).toBe(false);
  });

  test('backs resolv.conf up, keeps search/options and restores it on undo when there is no resolved', () => {
    const root = tree(false);
    const plan = planResolverSetup(root, '127.0.0.53');
    expect(plan.notes.join('\n')).toContain('"default: 192.0.2.53"');
    expect(applyResolverPlan(root, plan)).toEqual([`backed up /${RESOLV_CONF} to /${BACKUP}`, `wrote /${RESOLV_CONF}`]);
    const now = readFileSync(join(root, RESOLV_CONF), 'utf8');
    expect(now.split('\n').filter((l) => !l.startsWith('#'))).toEqual(['nameserver 127.0.0.53', 'search lan.example', 'options edns0', '']);
    expect(readFileSync(join(root, BACKUP), 'utf8')).toBe(ORIGINAL);
    // a second apply changes nothing and keeps the original backup
    expect(applyResolverPlan(root, planResolverSetup(root, '127.0.0.53'))).toEqual([`/${RESOLV_CONF} already points at 127.0.0.53`]);
    expect(readFileSync(join(root, BACKUP), 'utf8')).toBe(ORIGINAL);
    undoResolverSetup(root);
    expect(readFileSync(join(root, RESOLV_CONF), 'utf8')).toBe(ORIGINAL);
    expect(existsSync(join(root, BACKUP))).toBe(false);
  });

  test('restores a symlinked resolv.conf as the same symlink when undone', () => {
    const root = tree(false);
    rmSync(join(root, RESOLV_CONF));
    writeFileSync(join(root, 'etc/resolv.conf.real'), ORIGINAL);
    symlinkSync('resolv.conf.real', join(root, RESOLV_CONF));
    applyResolverPlan(root, planResolverSetup(root, '127.0.0.53'));
    expect(lstatSync(join(root, RESOLV_CONF)).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(root, 'etc/resolv.conf.real'), 'utf8')).toBe(ORIGINAL); // the link target untouched
    undoResolverSetup(root);
    expect(readlinkSync(join(root, RESOLV_CONF))).toBe('resolv.conf.real');
  });

  test('refuses to undo when resolv.conf was rewritten by someone else after apply', () => {
    const root = tree(false);
    applyResolverPlan(root, planResolverSetup(root, '127.0.0.53'));
    writeFileSync(join(root, RESOLV_CONF), 'nameserver 203.0.113.1\n');
    expect(() => undoResolverSetup(root)).toThrow('was changed since dnsseal wrote it');
    expect(() => applyResolverPlan(root, planResolverSetup(root, '127.0.0.53'))).toThrow('exists already');
    expect(readFileSync(join(root, BACKUP), 'utf8')).toBe(ORIGINAL);
  });

  test('removes the resolv.conf it wrote on undo when there was none before apply', () => {
    const root = tree(false);
    rmSync(join(root, RESOLV_CONF));
    const plan = planResolverSetup(root, '127.0.0.153');
    expect(plan.notes[0]).toBe('plain /etc/resolv.conf: there is none; one is written with "nameserver 127.0.0.153"; --undo removes it.');
    expect(applyResolverPlan(root, plan)).toEqual([`wrote /${RESOLV_CONF}`]);
    expect(undoResolverSetup(root)).toEqual([`removed /${RESOLV_CONF} (dnsseal wrote it where there was none)`]);
    expect(lstatExists(join(root, RESOLV_CONF))).toBe(false);
    expect(undoResolverSetup(root)).toEqual(['nothing to undo: no dnsseal drop-in and no resolv.conf backup']);
  });

  test('leaves a resolv.conf that is not its own when there is no backup to undo', () => {
    const root = tree(false);
    expect(undoResolverSetup(root)).toEqual(['nothing to undo: no dnsseal drop-in and no resolv.conf backup']);
    expect(readFileSync(join(root, RESOLV_CONF), 'utf8')).toBe(ORIGINAL);
  });

  test.each([
    ['0.0.0.0', 'nameserver 127.0.0.1'],
    ['[::]:53', 'nameserver ::1'],
  ])('points resolv.conf at loopback when dnsseal listens on the wildcard %p', (listen, line) => {
    const plan = planResolverSetup(tree(false), listen);
    expect(plan.writes[0]!.content).toContain(`\n${line}\n`);
    expect(plan.notes[0]).toContain('the resolver is pointed at its loopback address');
  });

  test('refuses a wildcard listen address on port 53 when resolved runs (its stub holds 127.0.0.53:53)', () => {
    expect(() => planResolverSetup(tree(true), '0.0.0.0:53')).toThrow('so dnsseal cannot listen on 0.0.0.0:53');
  });

  test('says there is nothing to undo when setup never ran', () => {
    expect(undoResolverSetup(tree(false))).toEqual(['nothing to undo: no dnsseal drop-in and no resolv.conf backup']);
  });
});
