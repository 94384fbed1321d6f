/**
 * An in-memory `Upstream` for tests of what sits above the transports (the upstream set): it
 * runs a `Script` on each query without sockets. A script that throws fails the exchange with
 * what it threw (e.g. `UpstreamError('refused')`); one that returns null lets it time out.
 * It passes the shared upstream contract (upstream-contract.test.ts), so it behaves like the
 * stream transports: an answer `accept` refuses fails the exchange as `unverified`.
 */
import dnsPacket from 'dns-packet';
import { questionMatches } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import { buildUpstreamQuery } from '../../src/dns/response.ts';
import { RandomIds, UpstreamError, type ExchangeHooks, type Upstream, type UpstreamTransport } from '../../src/proxy/upstream.ts';
import { answerFor } from './fake-encrypted.ts';
import type { FakeQuery, Script } from './fake-upstream.ts';

export class MemoryUpstream implements Upstream {
  readonly queries: FakeQuery[] = [];
  private readonly ids = new RandomIds();
  private readonly pending = new Set<(err: Error) => void>();
  private closed = false;

  constructor(
    readonly address: string,
    public script: Script,
    private readonly timeoutMs = 1000,
    readonly transport: UpstreamTransport = 'udp',
    readonly name = 'default',
  ) {}

  exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `${this.address}: upstream closed`));
    const id = this.ids.id();
    const plain = buildUpstreamQuery(id, query);
    const wire = hooks ? hooks.sign(plain) : plain;
    const d = dnsPacket.decode(Buffer.from(wire));
    const fq: FakeQuery = { bytes: wire, id, name: d.questions?.[0]?.name ?? '', type: d.questions?.[0]?.type ?? 'A', port: 0, address: 'memory', transport: 'udp' };
    this.queries.push(fq);
    return new Promise<Uint8Array>((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.pending.delete(fail);
        reject(err);
      };
      const timer = setTimeout(() => fail(new UpstreamError('timeout', `${this.address}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.pending.add(fail);
      let result: ReturnType<Script>;
      try {
        result = this.script(fq, { answerFor, sendFromSelf: () => {}, sendFromOther: () => {} });
      } catch (err) {
        return fail(err as Error);
      }
      Promise.resolve(result).then(
        (ans) => {
          if (!ans || !this.pending.has(fail)) return;
          if (((ans[0]! << 8) | ans[1]!) !== id || !questionMatches(ans, query.question)) return;
          if (hooks && !hooks.accept(ans)) return fail(new UpstreamError('unverified', `${this.address}: answer failed TSIG verification`));
          clearTimeout(timer);
          this.pending.delete(fail);
          resolve(ans);
        },
        (err: unknown) => fail(err as Error),
      );
    });
  }

  close(): void {
    this.closed = true;
    for (const fail of [...this.pending]) fail(new UpstreamError('closed', `${this.address}: upstream closed`));
  }
}
