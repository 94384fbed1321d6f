/**
 * Whether this process may load eBPF at all, and why a load it was refused failed. The kernel
 * answers EPERM both to a process without the capabilities and, for a privileged one, to a
 * locked-memory limit (kernels before 5.11), lockdown or a security module; a hint about pinned
 * maps fits neither. So a refused load is explained from the effective capability set
 * (`CapEff:` of /proc/self/status — authoritative: euid 0 in a container may lack them),
 * falling back to the effective uid when that cannot be read.
 *
 * Loading dnsseal's objects needs CAP_BPF (maps, programs) and CAP_NET_ADMIN (tc and cgroup
 * socket programs); CAP_SYS_ADMIN stands for both (kernels before 5.8 know only it).
 */
import { readFileSync } from 'node:fs';
import { errnoName } from '../bpf-syscall.ts';

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_BPF = 39;

/** What the systemd unit grants (src/ops/units/dnsseal.service), and so what the message asks for. */
export const BPF_CAPABILITIES = 'CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_ADMIN';

/** The effective capabilities as a bit set, from /proc/self/status text; null when absent. */
export function effectiveCapabilities(status: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : null;
}

/**
 * The capabilities loading needs that `capEff` lacks (empty: it has them). `capEff` null
 * (unknown): by the effective uid, root having them all.
 */
export function missingBpfCapabilities(capEff: bigint | null, euid: number): string[] {
  if (capEff === null) return euid === 0 ? [] : ['CAP_BPF', 'CAP_NET_ADMIN'];
  const has = (bit: number) => (capEff >> BigInt(bit)) & 1n;
  if (has(CAP_SYS_ADMIN)) return [];
  return [...(has(CAP_BPF) ? [] : ['CAP_BPF']), ...(has(CAP_NET_ADMIN) ? [] : ['CAP_NET_ADMIN'])];
}

/** This process's effective capabilities, read now (null when /proc cannot say). */
export function ownCapabilities(): { capEff: bigint | null; euid: number } {
  let capEff: bigint | null = null;
  try {
    capEff = effectiveCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    /* no /proc: the uid decides */
  }
  return { capEff, euid: process.geteuid?.() ?? -1 };
}

const EPERM = 1;
const EACCES = 13;

/** Why `bpf_object__load` failed with `errno`, for a process with these capabilities. */
export function loadFailureMessage(errno: number, own: { capEff: bigint | null; euid: number }): string {
  const name = errnoName(errno);
  const head = `loading the eBPF object failed: ${name}`;
  if (errno !== EPERM && errno !== EACCES) {
    return `${head} (a pinned map from an incompatible version? see the libbpf lines above; 'dnsseal down' removes the pins)`;
  }
  const missing = missingBpfCapabilities(own.capEff, own.euid);
  if (missing.length > 0) {
    const set = own.capEff === null ? `effective uid ${own.euid}` : `effective capabilities ${own.capEff.toString(16).padStart(16, '0')}`;
    return `${head}: this process lacks ${missing.join(' and ')} (${set}); run dnsseal as root, or with ${BPF_CAPABILITIES} (the systemd unit grants them)`;
  }
  if (errno === EACCES) {
    // privileged, and still refused a file: a pin it may not open (made by another user)
    return `${head} although the process has the capabilities: a pinned map or program under pin_root it may not open (pinned by another user?); see the libbpf lines above; 'dnsseal down' removes the pins`;
  }
  return `${head} although the process has the capabilities: a locked-memory limit (kernels before 5.11: LimitMEMLOCK=infinity, ulimit -l unlimited), kernel lockdown or a security module (SELinux, AppArmor) refused it; see the libbpf lines above`;
}
