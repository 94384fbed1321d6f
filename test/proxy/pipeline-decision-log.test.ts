import { describe, expect, test } from 'bun:test';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import type { ClientInfo } from '../../src/proxy/handler.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { createLogger, type LogLevel } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { fixture } from '../dns/fixtures.ts';
import { EventLog, RecordingRegistry, SuffixPolicy } from './doubles.ts';

const UDP: ClientInfo = { address: '127.0.0.9', port: 5353, transport: 'udp' };

function run(level: LogLevel) {
  const lines: string[] = [];
  const pipeline = new Pipeline({
    policy: new SuffixPolicy(['corp.test']),
    registry: new RecordingRegistry(new EventLog()),
    forwarder: {
      async forward(query: ParsedQuery) {
        const { answer } = fixture(query.qname === 'front.test' ? 'front-a' : 'www-a');
        return { bytes: answer, scan: scanAnswer(answer, query.question.length, query.qname), via: 'udp' as const };
      },
    },
    counters: newProxyCounters(),
    log: createLogger({ level, format: 'json', write: (l) => lines.push(l) }),
    canary: 'nxdomain',
  });
  return { pipeline, lines };
}

describe('proxy/pipeline decision log', () => {
  test('logs one debug line per decision with the matched name and channel when debug is on', async () => {
    const { pipeline, lines } = run('debug');
    await pipeline.handle(clientQuery('front.test', 1), UDP);
    await pipeline.handle(clientQuery('www.test', 1), UDP);
    const decisions = lines.map((l) => JSON.parse(l)).filter((r) => r.msg === 'proxy: decision');
    expect(decisions).toHaveLength(2);
    expect(decisions[0]).toMatchObject({ name: 'front.test', client: '127.0.0.9', channel: 'hub', matched: 'app.corp.test' });
    expect(decisions[1]).toMatchObject({ name: 'www.test', channel: null });
  });

  test('logs no decision lines when the level is info', async () => {
    const { pipeline, lines } = run('info');
    await pipeline.handle(clientQuery('front.test', 1), UDP);
    expect(lines.filter((l) => l.includes('proxy: decision'))).toEqual([]);
  });
});
