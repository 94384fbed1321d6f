/**
 * Reading a file an operator named (config, rules, hosts, keys, zone, TLS credentials and CAs).
 * A device is refused before it is read: `/dev/zero` (or a tty) would be read forever and the
 * process would grow until killed; `/dev/null` reads empty. A pipe is read (`--config
 * <(generate)` ends when its writer does).
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';

export function readTextFile(path: string): string {
  const st = statSync(path);
  if ((st.isCharacterDevice() || st.isBlockDevice()) && realpathSync(path) !== '/dev/null') throw Object.assign(new Error('ENOTFILE: a device, not a file'), { code: 'ENOTFILE' });
  return readFileSync(path, 'utf8');
}
