/**
 * The service definitions shipped inside the binary: a systemd unit and an OpenWrt procd init
 * script (both embedded by `bun build --compile`). `renderUnit` puts the path of the installed
 * binary where the templates name the default one; `unitTarget` says where each one goes.
 */
import { DnssealError } from '../../util/errors.ts';
import systemdUnit from './dnsseal.service' with { type: 'text' };
import openwrtInit from './dnsseal.init' with { type: 'text' };

export type UnitKind = 'systemd' | 'openwrt';

interface UnitTemplate {
  text: string;
  /** The binary path the template is written for (replaced by the real one). */
  defaultBinary: string;
  /** Destination below the root/prefix. */
  path: string;
  mode: number;
  /** What the operator runs next. */
  next: string[];
}

const UNITS: Record<UnitKind, UnitTemplate> = {
  systemd: {
    text: systemdUnit,
    defaultBinary: '/usr/local/bin/dnsseal',
    path: 'etc/systemd/system/dnsseal.service',
    mode: 0o644,
    next: ['systemctl daemon-reload', 'systemctl enable --now dnsseal'],
  },
  openwrt: {
    text: openwrtInit,
    defaultBinary: '/usr/sbin/dnsseal',
    path: 'etc/init.d/dnsseal',
    mode: 0o755,
    next: ['/etc/init.d/dnsseal enable', '/etc/init.d/dnsseal start'],
  },
};

export const UNIT_KINDS = Object.keys(UNITS) as UnitKind[];

/** The unit text with `binary` (an absolute path) substituted for the template's default. */
export function renderUnit(kind: UnitKind, binary: string): string {
  if (!binary.startsWith('/') || /\s|'|"|\\|\$|%/.test(binary)) {
    throw new DnssealError('install-unit', 'bad_binary', `binary path ${JSON.stringify(binary)} must be absolute, without spaces, quotes, $, % or backslashes`);
  }
  const t = UNITS[kind];
  return t.text.split(t.defaultBinary).join(binary);
}

export function unitTarget(kind: UnitKind): { path: string; mode: number; next: string[] } {
  const t = UNITS[kind];
  return { path: t.path, mode: t.mode, next: t.next };
}
