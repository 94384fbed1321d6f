/** findCharonSockets over a fake /proc: charon is the holder of the LISTENING unix socket at the VICI path. */
import { describe, expect, test } from 'bun:test';
import { findCharonSockets, listenerInode, type ProcFs, udpInodes } from '../../src/ipsec/charon-sockets.ts';

const UNIX = [
  'Num       RefCount Protocol Flags    Type St Inode Path',
  'ffff0001: 00000002 00000000 00010000 0001 01 4242 /run/charon.vici',
  'ffff0002: 00000003 00000000 00000000 0001 03 4343 /run/charon.vici',
  'ffff0003: 00000002 00000000 00010000 0001 01 4444 /run/other.sock',
].join('\n');
const UDP = [
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '  1: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5001 2 0000000000000000 0',
  '  2: 00000000:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9999 2 0000000000000000 0',
].join('\n');
const UDP6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 00000000000000000000000000000000:1194 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5002 2 0000000000000000 0',
].join('\n');

function fakeProc(files: Record<string, string>, fds: Record<string, Record<string, string>>): ProcFs {
  return {
    read: (p) => {
      if (!(p in files)) throw new Error(`ENOENT ${p}`);
      return files[p]!;
    },
    list: (dir) => (dir === '/proc' ? ['self', ...Object.keys(fds)] : Object.keys(fds[dir.split('/')[2]!] ?? {})),
    link: (p) => {
      const [, , pid, , fd] = p.split('/');
      return fds[pid!]?.[fd!];
    },
    canonical: (p) => p.replace(/^\/var\/run\//, '/run/'),
  };
}

describe('ipsec/charon-sockets', () => {
  test('listenerInode picks the listening socket at the path, through the canonical path', () => {
    expect(listenerInode(UNIX, '/run/charon.vici')).toBe('4242');
    expect(listenerInode(UNIX, '/var/run/charon.vici', (p) => p.replace(/^\/var\/run\//, '/run/'))).toBe('4242');
    expect(listenerInode(UNIX, '/run/absent.vici')).toBeUndefined();
  });

  test('udpInodes reads the inode column of udp and udp6 tables', () => {
    expect([...udpInodes(UDP)]).toEqual(['5001', '9999']);
    expect([...udpInodes(UDP6)]).toEqual(['5002']);
  });

  test('findCharonSockets returns the VICI listener\'s process and only its UDP socket fds', () => {
    const proc = fakeProc(
      { '/proc/net/unix': UNIX, '/proc/77/net/udp': UDP, '/proc/77/net/udp6': UDP6 },
      {
        // a client of the VICI socket (the connected end is another inode) and an impostor holding port 4500 elsewhere
        '12': { '3': 'socket:[4343]', '4': 'socket:[9999]' },
        '77': { '0': '/dev/null', '7': 'socket:[4242]', '9': 'socket:[5001]', '10': 'socket:[5002]', '11': 'socket:[8888]' },
      },
    );
    expect(findCharonSockets('/var/run/charon.vici', proc)).toEqual({ pid: 77, fds: [9, 10] });
  });

  test('findCharonSockets returns undefined when nothing listens at the VICI path', () => {
    expect(findCharonSockets('/run/charon.vici', fakeProc({ '/proc/net/unix': UNIX.split('\n')[0]! }, {}))).toBeUndefined();
  });
});

describe('ipsec/charon-sockets realProcFs', () => {
  test('canonical follows a symlinked socket path to where it points', async () => {
    const { mkdtempSync, symlinkSync, writeFileSync, rmSync } = await import('node:fs');
    const { realProcFs } = await import('../../src/ipsec/charon-sockets.ts');
    const dir = mkdtempSync('/tmp/dsg-guard-canon-');
    try {
      writeFileSync(`${dir}/charon.vici`, '');
      symlinkSync(`${dir}/charon.vici`, `${dir}/link.vici`);
      expect(realProcFs.canonical(`${dir}/link.vici`)).toBe(realProcFs.canonical(`${dir}/charon.vici`));
      expect(realProcFs.canonical(`${dir}/absent.vici`).endsWith('/absent.vici')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
