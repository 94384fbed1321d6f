/**
 * Floor target for bench-dns (`BENCH_DNS_TARGETS=...,echo-cache`): the least a Bun UDP server
 * can do per query — each datagram goes back to its sender with QR and RA set (NOERROR, the
 * question, no records), sent as dnsseal's listener sends (one `sendMany` per event-loop turn,
 * send-batch.ts), with the same `data(socket, bytes, port, address)` callback. No DNS parsing,
 * no cache, no registry. The CPU it uses per query is what Bun's UDP receive/send and the
 * kernel cost before any work of dnsseal's: the floor under `dnsseal-cache`. ECHO_BATCH=0 sends
 * each answer at once with `send`. Not a product.
 *   bun bench/dns-echo.ts LISTEN_PORT
 */
import { AddressedBatch } from '../src/proxy/send-batch.ts';

const port = Number(process.argv[2]);
const batched = process.env.ECHO_BATCH !== '0';
let batch: AddressedBatch | null = null;
const sock = await Bun.udpSocket({
  binaryType: 'uint8array',
  hostname: '127.0.0.1',
  port,
  socket: {
    data(s, data, p, address) {
      if (data.length < 12) return;
      data[2] = (data[2]! | 0x80) & ~0x02; // QR, not TC
      data[3] = 0x80; // RA, NOERROR
      if (batch) batch.push(data, p, address);
      else s.send(data, p, address);
    },
  },
});
if (batched) batch = new AddressedBatch((flat) => sock.sendMany(flat), () => {});
