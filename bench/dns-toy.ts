/**
 * Calibration target for bench-dns (`BENCH_DNS_TARGETS=...,toy`): the minimal Bun forwarder
 * BENCHMARKING.md's reference figures mention — one upstream socket, sequential IDs, a
 * dns-packet decode of each answer, no validation. Not a product; only a yardstick for what
 * the event loop allows on this machine at this moment.
 *   bun bench/dns-toy.ts LISTEN_PORT UPSTREAM_ADDR:PORT
 */
import dnsPacket from 'dns-packet';

const listenPort = Number(process.argv[2]);
const [upAddr, upPort] = [process.argv[3]!.split(':')[0]!, Number(process.argv[3]!.split(':')[1])];
const pending = new Map<number, { port: number; address: string; id: number }>();
let next = 0;
// Upstream socket first (BENCHMARKING.md, Bun notes).
const upstream = await Bun.udpSocket({
  socket: {
    data(_s, buf) {
      const id = (buf[0]! << 8) | buf[1]!;
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      dnsPacket.decode(buf);
      buf[0] = p.id >> 8;
      buf[1] = p.id & 0xff;
      listener.send(buf, p.port, p.address);
    },
  },
});
const listener = await Bun.udpSocket({
  hostname: '127.0.0.1',
  port: listenPort,
  socket: {
    data(_s, buf, port, address) {
      next = (next + 1) & 0xffff;
      pending.set(next, { port, address, id: (buf[0]! << 8) | buf[1]! });
      const out = Buffer.from(buf);
      out[0] = next >> 8;
      out[1] = next & 0xff;
      upstream.send(out, upPort, upAddr);
    },
  },
});
