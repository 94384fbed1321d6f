/**
 * The property every mutated packet must satisfy (shared by the CI test and the fuzz target
 * bench/dns-fuzz.ts): success with a well-formed result or a `WireError`, nothing else.
 */
import { questionMatches, scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseQuery } from '../../src/dns/query.ts';
import { buildErrorResponse, buildHeaderOnlyResponse, relayAnswer, udpLimit } from '../../src/dns/response.ts';
import { WireError } from '../../src/dns/wire.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { CAPTURES, fixture } from './fixtures.ts';
import { Rng, mutate } from './mutate.ts';

export const SEEDS = CAPTURES.map((c) => ({ c, ...fixture(c.file) }));

/** Runs one mutated query and one mutated answer; returns a description of a violation or null. */
export function checkOne(rng: Rng): string | null {
  const seed = SEEDS[rng.int(SEEDS.length)]!;
  // 1. a mutated client query
  const mq = mutate(clientQuery(seed.c.name, seed.c.type, seed.c.dnssec, rng.int(0x10000)), rng);
  const parsed = parseQuery(mq);
  if (parsed.kind === 'error') {
    const out = parsed.query ? buildErrorResponse(parsed.query, parsed.rcode) : buildHeaderOnlyResponse(mq, parsed.rcode);
    if (!out) return 'error answer missing for a query with a header';
    const back = parseReply(out);
    if (back) return `error answer unreadable: ${back}`;
  }
  // 2. a mutated upstream answer for a good query
  const good = parseQuery(clientQuery(seed.c.name, seed.c.type, seed.c.dnssec));
  if (good.kind !== 'ok') return 'fixture query did not parse';
  const query = good.query;
  const ma = mutate(seed.answer, rng);
  if (!questionMatches(ma, query.question)) return null;
  try {
    const scan = scanAnswer(ma, query.question.length, query.qname);
    for (const a of scan.addrs) if (!/^[0-9.]+$|^[0-9a-f:]+$/.test(a)) return `odd address text ${a}`;
    if (scan.chain[0] !== query.qname) return 'chain does not start at the query name';
    const out = relayAnswer(ma, scan, query, udpLimit(query));
    if (out.length > udpLimit(query)) return `UDP answer of ${out.length} exceeds the limit`;
    if (out[0] !== query.id >> 8 || out[1] !== (query.id & 0xff)) return 'client ID not patched in';
    const tcp = relayAnswer(ma, scan, query, null);
    if (tcp.length > 65535) return 'TCP answer over 65535';
  } catch (err) {
    if (!(err instanceof WireError)) return `unexpected ${String(err)}`;
  }
  return null;
}

function parseReply(out: Uint8Array): string | null {
  if (out.length < 12) return 'short';
  if (!(out[2]! & 0x80)) return 'QR not set';
  return null;
}

