/**
 * The Debian package (packaging/build-deb.sh), built from dist/dnsseal without compression so
 * the test takes seconds:
 * - installed with dpkg into a throw-away root (--root, maintainer scripts run chroot-less with
 *   DPKG_ROOT set, as for an image build: they must not touch this machine): the files, their
 *   modes, the conffiles, `dnsseal check` passing on the shipped configuration; an upgrade that
 *   keeps the operator's edit of the configuration; remove leaving only the conffiles, purge
 *   leaving nothing;
 * - the maintainer scripts' actions on a running system, in a private mount namespace where
 *   /etc and /run are temporary directories and `systemctl` and `dnsseal` are stubs that log
 *   their arguments: install starts nothing, upgrade restarts a running daemon, remove stops
 *   it and runs `dnsseal down` (and takes back resolver-setup), purge drops the enablement link.
 * Root only (dpkg into a root of its own, mount namespaces); CI runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(import.meta.dir, '..', '..');
const DIST = join(REPO, 'dist/dnsseal');
const skip = process.getuid?.() !== 0 ? 'needs root (dpkg --root, mount namespaces)' : !existsSync(DIST) ? 'dist/dnsseal is not built (make build)' : undefined;
if (skip) console.log(`skip packaging/deb: ${skip}`);

let work = '';
let deb1 = '';
let deb2 = '';

function run(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

function must(cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): string {
  const r = run(cmd, opts);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.code}\n${r.out}${r.err}`);
  return r.out;
}

function build(version: string): string {
  return must([join(REPO, 'packaging/build-deb.sh'), '--binary', DIST, '--out', join(work, 'out'), '--version', version, '--compress', 'none']).trim();
}

/** An empty dpkg database under a fresh root. */
function freshRoot(): string {
  const root = mkdtempSync(join(work, 'root-'));
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/log']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  return root;
}

/** dpkg on the throw-away root; libc6 is not in its database, hence --force-depends. */
function dpkg(root: string, ...args: string[]): string {
  return must(['dpkg', `--root=${root}`, '--force-script-chrootless', '--force-depends', ...args]);
}

function status(root: string): string {
  return run(['dpkg-query', `--admindir=${root}/var/lib/dpkg`, '-W', '-f=${Status} ${Version}', 'dnsseal']).out;
}

/** Every path under the root but dpkg's own database and log. */
function tree(root: string): string[] {
  return [...new Bun.Glob('**/*').scanSync({ cwd: root, dot: true, onlyFiles: false })]
    .filter((p) => !p.startsWith('var/lib/dpkg') && !p.startsWith('var/log') && p !== 'var' && p !== 'var/lib')
    .sort();
}

beforeAll(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'dnsseal-deb-'));
  deb1 = build('0.1.0~test1');
  deb2 = build('0.1.0~test2');
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip !== undefined)('packaging/deb', () => {
  test('installs the executable, unit, configuration and monitoring files when dpkg unpacks it into a root', () => {
    const root = freshRoot();
    const out = dpkg(root, '-i', deb1);
    expect(out).toContain('not started');
    expect(status(root)).toBe('install ok installed 0.1.0~test1');
    expect(tree(root).filter((p) => !statSync(join(root, p)).isDirectory())).toEqual([
      'etc/default/dnsseal',
      'etc/dnsseal/dnsseal.yaml',
      'lib/systemd/system/dnsseal.service',
      'usr/sbin/dnsseal',
      'usr/share/dnsseal/dnsseal-alerts.test.yaml',
      'usr/share/dnsseal/dnsseal-alerts.yaml',
      'usr/share/dnsseal/dnsseal.json',
      'usr/share/doc/dnsseal/README.md',
      'usr/share/doc/dnsseal/copyright',
    ]);
    const mode = (p: string) => (statSync(join(root, p)).mode & 0o7777).toString(8);
    expect(mode('usr/sbin/dnsseal')).toBe('755');
    expect(mode('etc/dnsseal/dnsseal.yaml')).toBe('644');
    expect(mode('lib/systemd/system/dnsseal.service')).toBe('644');
    expect(statSync(join(root, 'usr/sbin/dnsseal')).uid).toBe(0);
    expect(readFileSync(join(root, 'usr/sbin/dnsseal')).equals(readFileSync(DIST))).toBe(true);

    const unit = readFileSync(join(root, 'lib/systemd/system/dnsseal.service'), 'utf8');
    expect(unit).toContain('ExecStart=/usr/sbin/dnsseal run --config /etc/dnsseal/dnsseal.yaml $DNSSEAL_FLAGS');
    expect(unit).not.toContain('/usr/local/bin');
    expect(readFileSync(join(root, 'etc/dnsseal/dnsseal.yaml'), 'utf8')).toBe(must([DIST, 'config-default']));
    expect(readFileSync(join(root, 'usr/share/dnsseal/dnsseal.json'), 'utf8')).toBe(readFileSync(join(REPO, 'monitoring/grafana/dnsseal.json'), 'utf8'));
    const conffiles = run(['dpkg-query', `--admindir=${root}/var/lib/dpkg`, '-W', '-f=${Conffiles}', 'dnsseal']).out;
    expect(conffiles).toContain('/etc/dnsseal/dnsseal.yaml');
    expect(conffiles).toContain('/etc/default/dnsseal');
    // the md5sums the package carries match what was installed
    expect(run(['dpkg', `--root=${root}`, '--verify', 'dnsseal']).out).toBe('');
  });

  test('dnsseal check passes when given the shipped configuration', () => {
    const root = freshRoot();
    dpkg(root, '-i', deb1);
    // the default config forwards to /etc/resolv.conf's nameserver: give it a known one
    const resolv = join(work, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 192.0.2.53\n');
    const r = run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /etc/resolv.conf && exec "$2" check --config "$3"', 'sh', resolv, join(root, 'usr/sbin/dnsseal'), join(root, 'etc/dnsseal/dnsseal.yaml')]);
    expect(r.err).toBe('');
    expect(r.out).toContain('OK');
    expect(r.code).toBe(0);
  });

  test('keeps the operator’s configuration when a new version is installed over it', () => {
    const root = freshRoot();
    dpkg(root, '-i', deb1);
    const conf = join(root, 'etc/dnsseal/dnsseal.yaml');
    const edited = readFileSync(conf, 'utf8').replace('log_level: info', 'log_level: debug');
    writeFileSync(conf, edited);
    dpkg(root, '-i', deb2);
    expect(status(root)).toBe('install ok installed 0.1.0~test2');
    expect(readFileSync(conf, 'utf8')).toBe(edited);
    expect(existsSync(`${conf}.dpkg-new`) || existsSync(`${conf}.dpkg-dist`)).toBe(false);
  });

  test('leaves only the conffiles when removed and nothing when purged', () => {
    const root = freshRoot();
    dpkg(root, '-i', deb1);
    writeFileSync(join(root, 'etc/dnsseal/dnsseal.yaml'), 'mode: host\n# edited\n');
    dpkg(root, '-r', 'dnsseal');
    expect(status(root)).toBe('deinstall ok config-files 0.1.0~test1');
    expect(tree(root)).toEqual(['etc', 'etc/default', 'etc/default/dnsseal', 'etc/dnsseal', 'etc/dnsseal/dnsseal.yaml']);
    dpkg(root, '-P', 'dnsseal');
    expect(tree(root)).toEqual([]);
    expect(status(root)).toBe('');
  });
});

/**
 * The maintainer scripts acting on a running system (DPKG_ROOT empty): run by the host's sh in
 * a private mount namespace with /etc and /run replaced by temporary directories, and stubs
 * for systemctl and dnsseal first in PATH.
 */
describe.skipIf(skip !== undefined)('packaging/deb maintainer scripts', () => {
  let scripts = '';
  beforeAll(() => {
    if (skip) return;
    scripts = join(work, 'control');
    must(['dpkg-deb', '-e', deb1, scripts]);
  });

  interface World {
    systemd?: boolean;
    config?: boolean;
    /** Exit codes of `dnsseal down` calls, in order (default 0). */
    downExits?: number[];
    resolverSetup?: boolean;
    enabled?: boolean;
    runtimeDir?: boolean;
    dpkgRoot?: string;
  }

  function runScript(script: string, args: string[], world: World = {}): { code: number; out: string; err: string; calls: string[]; etc: string; run: string } {
    const box = mkdtempSync(join(work, 'box-'));
    const etc = join(box, 'etc');
    const runDir = join(box, 'run');
    const stubs = join(box, 'stubs');
    const log = join(box, 'calls.log');
    for (const d of [etc, runDir, stubs]) mkdirSync(d);
    writeFileSync(log, '');
    if (world.systemd !== false) mkdirSync(join(runDir, 'systemd/system'), { recursive: true });
    if (world.config !== false) {
      mkdirSync(join(etc, 'dnsseal'));
      writeFileSync(join(etc, 'dnsseal/dnsseal.yaml'), 'mode: host\n');
    }
    if (world.resolverSetup) {
      mkdirSync(join(etc, 'systemd/resolved.conf.d'), { recursive: true });
      writeFileSync(join(etc, 'systemd/resolved.conf.d/dnsseal.conf'), '[Resolve]\nDNS=127.0.0.153\n');
    }
    if (world.enabled) {
      mkdirSync(join(etc, 'systemd/system/multi-user.target.wants'), { recursive: true });
      symlinkSync('/lib/systemd/system/dnsseal.service', join(etc, 'systemd/system/multi-user.target.wants/dnsseal.service'));
    }
    if (world.runtimeDir) mkdirSync(join(runDir, 'dnsseal'));
    writeFileSync(join(stubs, 'systemctl'), `#!/bin/sh\necho "systemctl $*" >> "${log}"\n`);
    const exits = (world.downExits ?? []).join(' ');
    // `dnsseal down` exits with the next of downExits (0 when they run out)
    writeFileSync(
      join(stubs, 'dnsseal'),
      `#!/bin/sh\necho "dnsseal $*" >> "${log}"\n[ "$1" = down ] || exit 0\nn=$(grep -c '^dnsseal down' "${log}")\ni=0\nfor c in ${exits}; do i=$((i + 1)); [ "$i" = "$n" ] && exit "$c"; done\nexit 0\n`,
    );
    chmodSync(join(stubs, 'systemctl'), 0o755);
    chmodSync(join(stubs, 'dnsseal'), 0o755);
    const r = run(
      ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /run && mount --bind "$2" /etc && shift 2 && exec sh "$@"', 'sh', runDir, etc, join(scripts, script), ...args],
      { env: { PATH: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin`, DPKG_ROOT: world.dpkgRoot ?? '' } },
    );
    const calls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    return { ...r, calls, etc, run: runDir };
  }

  test('reloads systemd and starts nothing when the package is installed the first time', () => {
    const r = runScript('postinst', ['configure', '']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(['systemctl --system daemon-reload']);
    expect(r.out).toContain('systemctl enable --now dnsseal');
  });

  test('restarts a running daemon on the new executable when the package is upgraded', () => {
    const r = runScript('postinst', ['configure', '0.0.9']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(['systemctl --system daemon-reload', 'systemctl try-restart dnsseal.service']);
    expect(r.out).toBe('');
  });

  test('stops nothing when the old version’s prerm runs for an upgrade', () => {
    const r = runScript('prerm', ['upgrade', '0.2.0']);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([]);
  });

  test('stops the service and then removes the kernel state when the package is removed', () => {
    const r = runScript('prerm', ['remove'], { downExits: [3] });
    expect(r.code).toBe(0);
    expect(r.calls).toEqual(['systemctl stop dnsseal.service', 'dnsseal down --config /etc/dnsseal/dnsseal.yaml']);
    expect(r.err).toBe('');
  });

  test('runs dnsseal down with the defaults when the configuration is refused or missing', () => {
    const refused = runScript('prerm', ['remove'], { downExits: [1, 0] });
    expect(refused.calls).toEqual(['systemctl stop dnsseal.service', 'dnsseal down --config /etc/dnsseal/dnsseal.yaml', 'dnsseal down']);
    const missing = runScript('prerm', ['remove'], { config: false, systemd: false });
    expect(missing.calls).toEqual(['dnsseal down']);
    expect(missing.code).toBe(0);
  });

  test('warns but lets the removal go on when dnsseal down fails', () => {
    const r = runScript('prerm', ['remove'], { downExits: [2] });
    expect(r.code).toBe(0);
    expect(r.err).toContain("'dnsseal down' failed (exit 2)");
  });

  test('takes back resolver-setup when it was applied and the package is removed', () => {
    const r = runScript('prerm', ['remove'], { resolverSetup: true });
    expect(r.calls.at(-1)).toBe('dnsseal resolver-setup --undo');
  });

  test('touches nothing on this machine when dpkg installs into another root', () => {
    for (const [script, args] of [['postinst', ['configure', '0.0.9']], ['prerm', ['remove']], ['postrm', ['remove']]] as const) {
      const r = runScript(script, [...args], { dpkgRoot: join(work, 'elsewhere') });
      expect(r.code).toBe(0);
      expect(r.calls).toEqual([]);
    }
  });

  test('drops the enablement link and the runtime directory when the package is purged', () => {
    const r = runScript('postrm', ['purge'], { enabled: true, runtimeDir: true });
    expect(r.code).toBe(0);
    expect(() => lstatSync(join(r.etc, 'systemd/system/multi-user.target.wants/dnsseal.service'))).toThrow();
    expect(existsSync(join(r.run, 'dnsseal'))).toBe(false);
    expect(r.calls).toEqual(['systemctl --system daemon-reload']);
  });
});
