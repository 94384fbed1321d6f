/**
 * The OpenWrt package (packaging/build-ipk.sh): the layout opkg reads (a gzip'd tar of
 * debian-binary, data.tar.gz, control.tar.gz, all root-owned), its control fields, conffiles
 * and files; and its maintainer scripts run by busybox ash, as on OpenWrt, in a chroot that
 * plays the router (a musl loader, /lib/libc.so, stub init script and dnsseal that log their
 * arguments). The package is built around a small stand-in for the musl executable (the
 * layout does not depend on its bytes; `make package` uses dist/dnsseal-linux-*-musl), with the
 * texts printed by dist/dnsseal. Root only (chroot); CI runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(import.meta.dir, '..', '..');
const DIST = join(REPO, 'dist/dnsseal');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const skip =
  process.getuid?.() !== 0 ? 'needs root (chroot)' : !existsSync(DIST) ? 'dist/dnsseal is not built (make build)' : !BUSYBOX ? 'busybox-static is not installed (make deps)' : undefined;
if (skip) console.log(`skip packaging/ipk: ${skip}`);

let work = '';
let ipk = '';
let unpacked = '';

function must(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): string {
  const r = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.exitCode}\n${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

beforeAll(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'dnsseal-ipk-'));
  const standIn = join(work, 'dnsseal-musl');
  writeFileSync(standIn, '#!/bin/sh\necho stand-in for the musl executable\n');
  chmodSync(standIn, 0o755);
  ipk = must([join(REPO, 'packaging/build-ipk.sh'), '--binary', standIn, '--arch', 'x86_64', '--out', join(work, 'out'), '--version', '0.1.0~test', '--host-binary', DIST], {
    env: { IPK_GZIP: '-1' },
  }).trim();
  unpacked = join(work, 'unpacked');
  for (const d of ['outer', 'data', 'control']) mkdirSync(join(unpacked, d), { recursive: true });
  must(['tar', '-xzf', ipk, '-C', join(unpacked, 'outer')]);
  must(['tar', '-xzf', join(unpacked, 'outer/data.tar.gz'), '-C', join(unpacked, 'data')]);
  must(['tar', '-xzf', join(unpacked, 'outer/control.tar.gz'), '-C', join(unpacked, 'control')]);
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `tar -tv` lines as [mode, owner, name]. */
function listing(archive: string): Array<[string, string, string]> {
  return must(['tar', '-tvzf', archive])
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split(/\s+/);
      return [f[0]!, f[1]!, f.slice(5).join(' ')];
    });
}

describe.skipIf(skip !== undefined)('packaging/ipk', () => {
  test('is a gzip’d tar of debian-binary, data and control when opened as opkg does', () => {
    expect(ipk.endsWith('/dnsseal_0.1.0~test_x86_64.ipk')).toBe(true);
    expect([...readFileSync(ipk).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    expect(listing(ipk).map(([, owner, name]) => [owner, name])).toEqual([
      ['0/0', './debian-binary'],
      ['0/0', './data.tar.gz'],
      ['0/0', './control.tar.gz'],
    ]);
    expect(readFileSync(join(unpacked, 'outer/debian-binary'), 'utf8')).toBe('2.0\n');
  });

  test('carries the executable, the procd script and the configuration when the data is unpacked', () => {
    const files = listing(join(unpacked, 'outer/data.tar.gz')).filter(([mode]) => !mode.startsWith('d'));
    expect(files).toEqual([
      ['-rw-r--r--', '0/0', './etc/dnsseal/dnsseal.yaml'],
      ['-rwxr-xr-x', '0/0', './etc/init.d/dnsseal'],
      ['-rwxr-xr-x', '0/0', './usr/sbin/dnsseal'],
    ]);
    const data = join(unpacked, 'data');
    expect(readFileSync(join(data, 'etc/init.d/dnsseal'), 'utf8')).toBe(must([DIST, 'install-unit', '--openwrt', '--binary', '/usr/sbin/dnsseal', '--print']));
    expect(readFileSync(join(data, 'etc/init.d/dnsseal'), 'utf8')).toContain('PROG=/usr/sbin/dnsseal\n');
    expect(readFileSync(join(data, 'etc/dnsseal/dnsseal.yaml'), 'utf8')).toBe(must([DIST, 'config-default']));
    expect(readFileSync(join(data, 'usr/sbin/dnsseal'), 'utf8')).toContain('stand-in');
  });

  test('declares its dependencies, architecture and conffile when the control part is read', () => {
    const control = readFileSync(join(unpacked, 'control/control'), 'utf8');
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(control)?.[1];
    expect(field('Package')).toBe('dnsseal');
    expect(field('Version')).toBe('0.1.0~test');
    expect(field('Architecture')).toBe('x86_64');
    expect(field('Depends')).toBe('libc, libstdcpp');
    expect(Number(field('Installed-Size'))).toBeGreaterThan(0);
    expect(readFileSync(join(unpacked, 'control/conffiles'), 'utf8')).toBe('/etc/dnsseal/dnsseal.yaml\n');
    for (const s of ['postinst', 'prerm', 'postrm']) expect(statSync(join(unpacked, 'control', s)).mode & 0o777).toBe(0o755);
  });
});

/** The scripts under busybox ash in a chroot that looks like an OpenWrt router. */
describe.skipIf(skip !== undefined)('packaging/ipk maintainer scripts', () => {
  interface Router {
    running?: boolean;
    enabled?: boolean;
    /** /lib/libc.musl-x86_64.so.1 already there (not ours). */
    compatLink?: boolean;
    /** A link an earlier postinst made and recorded. */
    recorded?: boolean;
    instroot?: string;
    config?: boolean;
  }

  function router(r: Router): string {
    const root = mkdtempSync(join(work, 'router-'));
    for (const d of ['bin', 'lib', 'dev', 'etc/init.d', 'etc/dnsseal', 'usr/sbin', 'tmp', 'scripts']) mkdirSync(join(root, d), { recursive: true });
    must(['mknod', '-m', '666', join(root, 'dev/null'), 'c', '1', '3']);
    must(['cp', BUSYBOX!, join(root, 'bin/busybox')]);
    must([join(root, 'bin/busybox'), '--install', '-s', join(root, 'bin')]);
    // --install links to the host path of busybox; inside the chroot that is /bin/busybox
    for (const a of ['sh', 'ln', 'rm', 'rmdir', 'mkdir', 'cat', 'echo', 'grep', 'readlink']) {
      rmSync(join(root, 'bin', a), { force: true });
      symlinkSync('busybox', join(root, 'bin', a));
    }
    writeFileSync(join(root, 'lib/libc.so'), 'musl\n');
    symlinkSync('libc.so', join(root, 'lib/ld-musl-x86_64.so.1'));
    if (r.compatLink) symlinkSync('libc.so', join(root, 'lib/libc.musl-x86_64.so.1'));
    if (r.recorded) {
      symlinkSync('libc.so', join(root, 'lib/libc.musl-x86_64.so.1'));
      mkdirSync(join(root, 'usr/lib/dnsseal'), { recursive: true });
      writeFileSync(join(root, 'usr/lib/dnsseal/libc-compat-links'), '/lib/libc.musl-x86_64.so.1\n');
    }
    if (r.config !== false) writeFileSync(join(root, 'etc/dnsseal/dnsseal.yaml'), 'mode: gateway\n');
    const stub = (path: string, body: string) => {
      writeFileSync(join(root, path), `#!/bin/sh\necho "${path.replace(/^/, '/')} $*" >> /tmp/calls\n${body}`);
      chmodSync(join(root, path), 0o755);
    };
    stub('etc/init.d/dnsseal', `case "$1" in running) exit ${r.running ? 0 : 1} ;; enabled) exit ${r.enabled ? 0 : 1} ;; esac\nexit 0\n`);
    stub('usr/sbin/dnsseal', '[ "$1" = down ] && exit 3\nexit 0\n');
    for (const s of ['postinst', 'prerm', 'postrm']) must(['cp', join(unpacked, 'control', s), join(root, 'scripts', s)]);
    return root;
  }

  function runIn(root: string, script: string, args: string[], instroot = ''): { code: number; out: string; err: string; calls: string[] } {
    const r = Bun.spawnSync(['chroot', root, '/bin/sh', `/scripts/${script}`, ...args], {
      stdout: 'pipe',
      stderr: 'pipe',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', IPKG_INSTROOT: instroot },
    });
    const log = join(root, 'tmp/calls');
    const calls = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString(), calls };
  }

  test('links the Alpine musl soname to OpenWrt’s libc and enables nothing when installed', () => {
    const root = router({});
    const r = runIn(root, 'postinst', ['configure']);
    expect(r.code).toBe(0);
    expect(readlinkSync(join(root, 'lib/libc.musl-x86_64.so.1'))).toBe('libc.so');
    expect(readFileSync(join(root, 'usr/lib/dnsseal/libc-compat-links'), 'utf8')).toBe('/lib/libc.musl-x86_64.so.1\n');
    expect(r.calls).toEqual(['/etc/init.d/dnsseal running', '/etc/init.d/dnsseal enabled']);
    expect(r.out).toContain('/etc/init.d/dnsseal enable && /etc/init.d/dnsseal start');
  });

  test('leaves a soname link it did not make alone when installed and removed', () => {
    const root = router({ compatLink: true });
    runIn(root, 'postinst', ['configure']);
    expect(existsSync(join(root, 'usr/lib/dnsseal/libc-compat-links'))).toBe(false);
    runIn(root, 'postrm', ['remove']);
    expect(readlinkSync(join(root, 'lib/libc.musl-x86_64.so.1'))).toBe('libc.so');
  });

  test('restarts a running daemon when the package is upgraded', () => {
    const r = runIn(router({ running: true, enabled: true, compatLink: true }), 'postinst', ['configure']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(['/etc/init.d/dnsseal running', '/etc/init.d/dnsseal restart']);
    expect(r.out).toBe('');
  });

  test('stops and disables the service, then removes the kernel state when removed', () => {
    const r = runIn(router({ running: true, enabled: true }), 'prerm', ['remove']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(['/etc/init.d/dnsseal stop', '/etc/init.d/dnsseal disable', '/usr/sbin/dnsseal down --config /etc/dnsseal/dnsseal.yaml']);
    expect(r.err).toBe('');
  });

  test('stops nothing when opkg runs the old prerm for an upgrade', () => {
    expect(runIn(router({ running: true }), 'prerm', ['upgrade', '0.2.0']).calls).toEqual([]);
  });

  test('takes back the soname link it made when removed', () => {
    const root = router({ recorded: true });
    expect(runIn(root, 'postrm', ['remove']).code).toBe(0);
    expect(existsSync(join(root, 'lib/libc.musl-x86_64.so.1'))).toBe(false);
    expect(existsSync(join(root, 'usr/lib/dnsseal'))).toBe(false);
  });

  test('does nothing to a running system when an image is built ($IPKG_INSTROOT)', () => {
    const root = router({ running: true });
    for (const [s, a] of [['postinst', ['configure']], ['prerm', ['remove']], ['postrm', ['remove']]] as const) {
      const r = runIn(root, s, [...a], '/build/root');
      expect(r.code).toBe(0);
      expect(r.calls).toEqual([]);
    }
    expect(existsSync(join(root, 'lib/libc.musl-x86_64.so.1'))).toBe(false);
  });
});
