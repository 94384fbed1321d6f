/** Runs test/tls/fixtures/tls-node.ts as a child process (optionally inside a netns). */
import type { Subprocess } from 'bun';

export class NodeProc {
  port = 0;
  private out = '';
  constructor(readonly proc: Subprocess<'ignore', 'pipe', 'inherit'>) {}

  static async start(cfg: object, prefix: string[] = []): Promise<NodeProc> {
    const proc = Bun.spawn([...prefix, `${process.cwd()}/node_modules/.bin/bun`, `${import.meta.dir}/fixtures/tls-node.ts`, JSON.stringify(cfg)], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'inherit',
    });
    const n = new NodeProc(proc);
    void n.read();
    const until = performance.now() + 15_000;
    while (!/ready (\d+)/.test(n.out)) {
      if (performance.now() > until || proc.exitCode !== null) throw new Error(`tls-node did not get ready: ${n.out}`);
      await Bun.sleep(20);
    }
    n.port = Number(/ready (\d+)/.exec(n.out)![1]);
    return n;
  }

  private async read(): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of this.proc.stdout) this.out += dec.decode(chunk);
  }

  /** The child's metrics text (it prints them on SIGUSR1). */
  async metrics(): Promise<string> {
    const start = this.out.length;
    this.proc.kill('SIGUSR1');
    const until = performance.now() + 5000;
    while (!this.out.slice(start).includes('END\n')) {
      if (performance.now() > until) throw new Error('no metrics from tls-node');
      await Bun.sleep(10);
    }
    return this.out.slice(start);
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}
