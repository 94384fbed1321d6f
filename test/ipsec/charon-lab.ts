/**
 * Real charons for the privileged tests: each in its own network namespace AND mount
 * namespace (a tmpfs on /run, so pid files and sockets never meet the host's), with its own
 * strongswan.conf and VICI socket under a temporary directory. Plugins that grab traffic or
 * routes on their own (kernel-libipsec, bypass-lan, farp, dhcp) are not loaded; routes are
 * not installed. Test CA and ECDSA certificates are made with `pki` at test time.
 *
 * Everything a lab creates (processes, namespaces, directories) is recorded and removed by
 * `destroy()`; only the processes it spawned are killed, by pid.
 */
import { spawn, spawnSync, type Subprocess } from 'bun';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHARON = '/usr/lib/ipsec/charon';

/** Why the privileged tests cannot run here, or null when they can. */
export function privilegedSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not root (privileged tests need root for netns and charon)';
  if (!existsSync(CHARON)) return `${CHARON} missing (install strongswan-charon: make deps)`;
  if (spawnSync(['which', 'pki']).exitCode !== 0) return 'pki missing (install strongswan-pki: make deps)';
  for (const [plugin, pkg] of PLUGIN_PACKAGES) {
    if (!existsSync(`/usr/lib/ipsec/plugins/libstrongswan-${plugin}.so`)) return `charon plugin ${plugin} missing (install ${pkg})`;
  }
  if (spawnSync(['ip', 'netns', 'list']).exitCode !== 0) return 'ip netns unusable';
  return null;
}

function run(cmd: string[]): string {
  const r = spawnSync(cmd, { stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** Plugins a test charon needs: crypto, X.509, kernel-netlink, sockets, vici. Nothing else. */
const PLUGINS = 'random nonce kdf openssl aes sha1 sha2 hmac gcm gmp pem pkcs1 pkcs8 x509 pubkey revocation constraints kernel-netlink socket-default vici';
/** Plugins that live outside libstrongswan on Debian (ECDSA needs openssl). */
const PLUGIN_PACKAGES: Array<[string, string]> = [
  ['openssl', 'libstrongswan-standard-plugins'],
  ['gcm', 'libstrongswan-standard-plugins'],
  ['socket-default', 'strongswan-libcharon'],
  ['vici', 'strongswan-swanctl'],
];

export interface Creds {
  caPem: string;
  certs: Map<string, { cert: string; key: string }>;
}

export interface LabCharon {
  name: string;
  ns: string;
  socketPath: string;
  logPath: string;
  proc: Subprocess;
}

export class CharonLab {
  readonly dir: string;
  private readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly charons: LabCharon[] = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'dnsseal-charon-'));
    this.tag = `ds${process.pid % 100000}`;
  }

  /** Creates a namespace with lo up; its name is unique to this process. */
  netns(short: string): string {
    const ns = `${this.tag}-${short}`;
    run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A veth pair between two namespaces with the given CIDR addresses. */
  link(nsA: string, addrA: string, nsB: string, addrB: string): void {
    const a = `v${this.namespaces.indexOf(nsA)}x${this.namespaces.indexOf(nsB)}`;
    const b = `v${this.namespaces.indexOf(nsB)}x${this.namespaces.indexOf(nsA)}`;
    run(['ip', 'link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
    run(['ip', '-n', nsA, 'addr', 'add', addrA, 'dev', a]);
    run(['ip', '-n', nsB, 'addr', 'add', addrB, 'dev', b]);
    run(['ip', '-n', nsA, 'link', 'set', a, 'up']);
    run(['ip', '-n', nsB, 'link', 'set', b, 'up']);
  }

  /**
   * Whether this kernel can hold an ESP SA with AES-GCM (the build machines cannot; the
   * kernel lab can). Probed in a scratch namespace so nothing is left behind.
   */
  kernelHasEspGcm(): boolean {
    const ns = this.netns('probe');
    const r = spawnSync(['ip', '-n', ns, 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x100',
      'mode', 'transport', 'aead', 'rfc4106(gcm(aes))', '0x0102030405060708090a0b0c0d0e0f1011121314', '128'], { stderr: 'pipe' });
    return r.exitCode === 0;
  }

  /** `ip xfrm <what>` inside a namespace, as text. */
  xfrm(ns: string, what: 'policy' | 'state'): string {
    return run(['ip', '-n', ns, 'xfrm', what]);
  }

  /** A test CA and one ECDSA P-256 certificate per name (CN and DNS SAN = the name). */
  makeCreds(names: string[]): Creds {
    const d = join(this.dir, 'pki');
    mkdirSync(d, { recursive: true });
    const caKey = run(['pki', '--gen', '--type', 'ecdsa', '--size', '256', '--outform', 'pem']);
    writeFileSync(join(d, 'ca.key'), caKey);
    const caPem = run(['pki', '--self', '--ca', '--lifetime', '2', '--in', join(d, 'ca.key'), '--type', 'ecdsa', '--dn', 'CN=dnsseal test CA', '--outform', 'pem']);
    writeFileSync(join(d, 'ca.pem'), caPem);
    const certs = new Map<string, { cert: string; key: string }>();
    for (const name of names) {
      const key = run(['pki', '--gen', '--type', 'ecdsa', '--size', '256', '--outform', 'pem']);
      writeFileSync(join(d, `${name}.key`), key);
      writeFileSync(join(d, `${name}.pub`), run(['pki', '--pub', '--in', join(d, `${name}.key`), '--type', 'ecdsa', '--outform', 'pem']));
      const cert = run(['pki', '--issue', '--lifetime', '2', '--cacert', join(d, 'ca.pem'), '--cakey', join(d, 'ca.key'), '--in', join(d, `${name}.pub`), '--type', 'pub', '--dn', `CN=${name}`, '--san', name, '--outform', 'pem']);
      certs.set(name, { cert, key });
    }
    return { caPem, certs };
  }

  /** Starts charon in `ns` (own mount namespace) and waits for its VICI socket. */
  async startCharon(name: string, ns: string): Promise<LabCharon> {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true });
    const socketPath = join(d, 'charon.vici');
    const conf = join(d, 'strongswan.conf');
    writeFileSync(
      conf,
      `charon {
  load_modular = no
  load = ${PLUGINS}
  install_routes = no
  install_virtual_ip = no
  retransmit_tries = 2
  retransmit_timeout = 1
  plugins {
    vici { socket = unix://${socketPath} }
  }
  filelog {
    stderr { default = 1 ike = 2 cfg = 2 }
  }
}
`,
    );
    const logPath = join(d, 'charon.log');
    const proc = spawn(
      ['ip', 'netns', 'exec', ns, 'unshare', '-m', 'sh', '-c', `mount -t tmpfs tmpfs /run && exec ${CHARON}`],
      { env: { ...process.env, STRONGSWAN_CONF: conf }, stdout: Bun.file(logPath), stderr: Bun.file(logPath) },
    );
    const c: LabCharon = { name, ns, socketPath, logPath, proc };
    this.charons.push(c);
    await this.waitFor(() => existsSync(socketPath), 10_000, `${name}: VICI socket did not appear`, c);
    return c;
  }

  /** Kills one charon (SIGKILL when `hard`) and waits for it to exit. */
  async stopCharon(c: LabCharon, hard = false): Promise<void> {
    if (c.proc.exitCode === null && c.proc.signalCode === null) {
      c.proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
      const t = setTimeout(() => c.proc.kill('SIGKILL'), 3_000);
      await c.proc.exited;
      clearTimeout(t);
    }
    rmSync(c.socketPath, { force: true });
  }

  log(c: LabCharon): string {
    try {
      return readFileSync(c.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async waitFor(cond: () => boolean, ms: number, what: string, c?: LabCharon): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`${what}${c ? `\n--- ${c.name} log ---\n${this.log(c)}` : ''}`);
      if (c && c.proc.exitCode !== null) throw new Error(`${c.name}: charon exited (${c.proc.exitCode})\n${this.log(c)}`);
      await Bun.sleep(50);
    }
  }

  async destroy(): Promise<void> {
    for (const c of this.charons) await this.stopCharon(c).catch(() => {});
    for (const ns of this.namespaces) spawnSync(['ip', 'netns', 'del', ns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
