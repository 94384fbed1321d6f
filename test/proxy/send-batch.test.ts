import { describe, expect, test } from 'bun:test';
import { AddressedBatch, ConnectedBatch } from '../../src/proxy/send-batch.ts';

describe('proxy/send-batch', () => {
  test('sends everything queued in one loop turn with one sendMany when packets pile up', async () => {
    const calls: unknown[][] = [];
    const b = new AddressedBatch((flat) => (calls.push(flat), flat.length / 3), () => {});
    b.push(Uint8Array.of(1), 53, '127.0.0.1');
    b.push(Uint8Array.of(2), 54, '::1');
    expect(calls).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([[Uint8Array.of(1), 53, '127.0.0.1', Uint8Array.of(2), 54, '::1']]);
  });

  test('counts the packets the socket refused when sendMany takes fewer', async () => {
    let dropped = 0;
    const b = new AddressedBatch(() => 1, (n) => (dropped += n));
    for (let i = 0; i < 4; i++) b.push(Uint8Array.of(i), 53, '127.0.0.1');
    await new Promise((r) => setImmediate(r));
    expect(dropped).toBe(3);
  });

  test('calls the refusal callback of exactly the packets not sent when a connected socket is full', async () => {
    const refused: number[] = [];
    const b = new ConnectedBatch(() => 2);
    for (let i = 0; i < 5; i++) b.push(Uint8Array.of(i), () => refused.push(i));
    await new Promise((r) => setImmediate(r));
    expect(refused).toEqual([2, 3, 4]);
  });

  test('treats a throwing sendMany (socket closed) as nothing sent', async () => {
    const refused: number[] = [];
    const b = new ConnectedBatch(() => {
      throw new Error('closed');
    });
    b.push(Uint8Array.of(1), () => refused.push(1));
    b.flush();
    expect(refused).toEqual([1]);
  });
});
