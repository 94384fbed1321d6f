/**
 * Starting a DNS server of Debian's for a test: on free loopback ports picked at random (a port
 * taken between the pick and the bind costs one more attempt), ready when it answers a UDP probe,
 * stopped with its scratch directory removed.
 */
import { rmSync } from 'node:fs';
import type { Subprocess } from 'bun';

/** Sends one UDP query to ADDRESS:PORT and waits up to 200 ms for any answer. */
export async function udpAnswers(address: string, port: number, query: Uint8Array): Promise<boolean> {
  const { promise, resolve } = Promise.withResolvers<boolean>();
  const sock = await Bun.udpSocket({ socket: { data: () => resolve(true), error: () => {} } });
  sock.send(query, port, address);
  const t = setTimeout(() => resolve(false), 200);
  const ok = await promise;
  clearTimeout(t);
  sock.close();
  return ok;
}

export interface SpawnedServer<P> {
  ports: P;
  stop(): Promise<void>;
}

/**
 * Up to 5 attempts: `pick` chooses ports (and writes the config for them), `command` is run
 * (pinned to `cpu` when given), and the server is ready once `ready` is true — at most 5 s, or
 * until it exits. `stop()` ends it and removes `dir`. Throws `what: could not start …` after the
 * last attempt.
 */
export async function spawnServer<P>(
  what: string,
  dir: string,
  o: { pick: () => P; command: (ports: P) => string[]; ready: (ports: P) => Promise<boolean>; cpu?: number },
): Promise<SpawnedServer<P>> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports = o.pick();
    const cmd = o.command(ports);
    const proc: Subprocess = Bun.spawn(o.cpu !== undefined ? ['taskset', '-c', String(o.cpu), ...cmd] : cmd, { stdout: 'ignore', stderr: 'pipe' });
    for (let i = 0; i < 50 && proc.exitCode === null; i++) {
      if (await o.ready(ports)) {
        return {
          ports,
          stop: async () => {
            proc.kill('SIGTERM');
            await proc.exited;
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await Bun.sleep(100);
    }
    proc.kill('SIGKILL');
    await proc.exited;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${what}: could not start on loopback ports`);
}
