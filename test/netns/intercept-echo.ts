/**
 * Echo peers for the intercept netns test.
 *   server <a,b>      TCP echo on [::]:7, UDP echo on <a>:7 and <b>:7 (replies from that address)
 *   tcp <addr>        connect, send, expect the echo; prints "ok" (exit 1 otherwise)
 *   udp <addr>        a CONNECTED UDP socket (the kernel drops replies from any other source,
 *                     so an echo proves the reply came from the intercept address); prints "ok"
 *   bulk <addr> <n>   TCP: send n bytes, expect the same n bytes back (segmentation offload paths)
 *   hold <addr> <ms>  TCP flow that echoes a message every 100 ms for <ms>; prints "ok <n>"
 *                     when every message came back (used across a daemon restart)
 */
export {};

const [mode, addr, arg] = process.argv.slice(2);
const MSG = 'dnsseal-intercept';

function fail(why: string): never {
  console.log(`fail ${why}`);
  process.exit(1);
}

if (mode === 'server') {
  // Echo with backpressure: what write() did not take waits for drain.
  const pending = new Map<unknown, Uint8Array[]>();
  const flush = (s: { write(b: Uint8Array): number }) => {
    const q = pending.get(s) ?? [];
    while (q.length) {
      const b = q[0]!;
      const w = s.write(b);
      if (w < b.length) {
        q[0] = b.subarray(Math.max(w, 0));
        return;
      }
      q.shift();
    }
  };
  Bun.listen({
    hostname: '::',
    port: 7,
    socket: {
      open(s) { pending.set(s, []); },
      data(s, d) {
        pending.get(s)!.push(new Uint8Array(d));
        flush(s);
      },
      drain(s) { flush(s); },
      close(s) { pending.delete(s); },
    },
  });
  // UDP bound per address: a socket on [::] would answer from the route's source address.
  for (const host of (addr ?? '').split(',').filter(Boolean)) {
    await Bun.udpSocket({ hostname: host, port: 7, socket: { data(s, d, port, from) { s.send(d, port, from); } } });
  }
  console.log('ready');
  setInterval(() => {}, 1 << 30);
} else if (mode === 'tcp' || mode === 'hold') {
  const total = mode === 'hold' ? Math.max(1, Math.floor(Number(arg) / 100)) : 1;
  let got = '';
  let sent = 0;
  const timer = setTimeout(() => fail(`timeout after ${sent} sent, ${got.length} bytes back`), mode === 'hold' ? Number(arg) + 4000 : 3000);
  const sock = await Bun.connect({
    hostname: addr!,
    port: 7,
    socket: {
      data(_s, d) {
        got += d.toString();
        if (got.length === total * MSG.length) {
          clearTimeout(timer);
          console.log(mode === 'hold' ? `ok ${total}` : 'ok');
          process.exit(0);
        }
      },
      error(_s, e) { fail(String(e)); },
      close() { if (got.length < total * MSG.length) fail(`closed after ${got.length} bytes`); },
    },
  }).catch((e) => fail(String(e)));
  for (let i = 0; i < total; i++) {
    sock.write(MSG);
    sent++;
    if (mode === 'hold') await Bun.sleep(100);
  }
} else if (mode === 'bulk') {
  const n = Number(arg);
  const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff);
  let got = 0;
  let same = true;
  const timer = setTimeout(() => fail(`timeout with ${got} of ${n} bytes back`), 15000);
  const sock = await Bun.connect({
    hostname: addr!,
    port: 7,
    socket: {
      data(_s, d) {
        for (let i = 0; i < d.length; i++) if (d[i] !== data[got + i]) same = false;
        got += d.length;
        if (got >= n) {
          clearTimeout(timer);
          console.log(same && got === n ? 'ok' : `fail corrupted (${got} bytes)`);
          process.exit(0);
        }
      },
      drain(s) { pump(s); },
      error(_s, e) { fail(String(e)); },
    },
  }).catch((e) => fail(String(e)));
  let off = 0;
  const pump = (s: typeof sock) => {
    while (off < n) {
      const w = s.write(data.subarray(off, Math.min(n, off + 65536)));
      off += w;
      if (w === 0) return;
    }
  };
  pump(sock);
} else if (mode === 'udp') {
  const timer = setTimeout(() => fail('timeout'), 3000);
  const s = await Bun.udpSocket({
    hostname: addr!.includes(':') ? '::' : '0.0.0.0',
    connect: { hostname: addr!, port: 7 },
    socket: {
      data(_s, d) {
        if (d.toString() === MSG) {
          clearTimeout(timer);
          console.log('ok');
          process.exit(0);
        }
      },
    },
  });
  for (let i = 0; i < 3; i++) {
    s.send(MSG);
    await Bun.sleep(300);
  }
} else {
  console.error('usage: intercept-echo.ts server|tcp|udp|hold …');
  process.exit(2);
}
