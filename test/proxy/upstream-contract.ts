/**
 * The behaviour every `Upstream` transport shares (UDP, TCP, DoT, DoH), run against each by
 * upstream-contract.test.ts with a scripted server of that transport.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { UpstreamError, type ExchangeHooks, type Upstream } from '../../src/proxy/upstream.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import type { FakeQuery, Script } from './fake-upstream.ts';

export interface ContractTarget {
  name: string;
  /** Starts a server running `script` and an upstream to it. */
  start(script: Script, timeoutMs: number): Promise<{ up: Upstream; queries: FakeQuery[]; stop(): Promise<void> | void }>;
}

export function q(name: string, type = 1): ParsedQuery {
  const r = parseQuery(clientQuery(name, type));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

function firstA(answer: Uint8Array): string {
  return (dnsPacket.decode(Buffer.from(answer)).answers?.[0] as { data: string }).data;
}

/** Hooks that record what they saw; `accept` answers `verdict`. */
export class RecordingHooks implements ExchangeHooks {
  signed: Uint8Array[] = [];
  accepted: Uint8Array[] = [];
  constructor(private readonly verdict = true) {}
  sign(wire: Uint8Array): Uint8Array {
    this.signed.push(wire);
    return wire;
  }
  accept(answer: Uint8Array): boolean {
    this.accepted.push(answer);
    return this.verdict;
  }
}

export function upstreamContract(t: ContractTarget): void {
  describe(`proxy/upstream contract: ${t.name}`, () => {
    test('resolves with the answer for its question when the server answers', async () => {
      const s = await t.start((query, tools) => tools.answerFor(query, { answers: [{ name: query.name, type: 'A', ttl: 5, class: 'IN', data: '198.51.100.9' }] }), 2000);
      try {
        const ans = await s.up.exchange(q('www.contract.test'));
        expect(firstA(ans)).toBe('198.51.100.9');
        expect(s.queries.map((x) => x.name)).toEqual(['www.contract.test']);
      } finally {
        s.up.close();
        await s.stop();
      }
    });

    test('gives each of several concurrent queries its own answer when the server answers in reverse order', async () => {
      const held: Array<() => void> = [];
      const s = await t.start(
        (query, tools) =>
          new Promise((resolve) => {
            const n = Number(/^n(\d+)\./.exec(query.name)![1]);
            held.push(() => resolve(tools.answerFor(query, { answers: [{ name: query.name, type: 'A', ttl: 5, class: 'IN', data: `198.51.100.${n}` }] })));
            if (held.length === 8) for (const r of held.reverse()) r();
          }),
        3000,
      );
      try {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => s.up.exchange(q(`n${i + 1}.contract.test`))));
        expect(answers.map(firstA)).toEqual(Array.from({ length: 8 }, (_, i) => `198.51.100.${i + 1}`));
      } finally {
        s.up.close();
        await s.stop();
      }
    });

    test('rejects with timeout when the server never answers', async () => {
      const s = await t.start(() => null, 200);
      try {
        const err = await s.up.exchange(q('silent.contract.test')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UpstreamError);
        expect((err as UpstreamError).reason).toBe('timeout');
      } finally {
        s.up.close();
        await s.stop();
      }
    });

    test('rejects with closed when closed while a query is in flight', async () => {
      const s = await t.start(() => null, 10_000);
      try {
        const p = s.up.exchange(q('pending.contract.test')).catch((e: unknown) => e);
        // Let the query reach the wire (or the connection attempt start) first.
        await waitFor(() => s.queries.length === 1, 'the server to receive the query');
        s.up.close();
        expect(((await p) as UpstreamError).reason).toBe('closed');
      } finally {
        await s.stop();
      }
    });

    test('signs the exact bytes the server receives and hands the answer to accept when hooks are given', async () => {
      const s = await t.start((query, tools) => tools.answerFor(query), 2000);
      try {
        const hooks = new RecordingHooks();
        const ans = await s.up.exchange(q('signed.contract.test'), hooks);
        expect(hooks.signed).toHaveLength(1);
        expect([...s.queries[0]!.bytes]).toEqual([...hooks.signed[0]!]);
        expect(hooks.accepted).toHaveLength(1);
        expect([...hooks.accepted[0]!]).toEqual([...ans]);
      } finally {
        s.up.close();
        await s.stop();
      }
    });

    test('never resolves with an answer that accept refuses', async () => {
      const s = await t.start((query, tools) => tools.answerFor(query), 300);
      try {
        const err = await s.up.exchange(q('forged.contract.test'), new RecordingHooks(false)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UpstreamError);
        // UDP keeps waiting for the genuine answer (then times out); streams fail at once.
        expect(['unverified', 'timeout']).toContain((err as UpstreamError).reason);
      } finally {
        s.up.close();
        await s.stop();
      }
    });
  });
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}
