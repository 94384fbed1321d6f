/**
 * A scriptable upstream on loopback for tests: for each query it runs `script`, which can
 * send forgeries (from the right socket with a wrong ID or question, or from another port)
 * before — or instead of — the real answer. It answers TCP on the same port.
 */
import type { TCPSocketListener, TCPSocketListenOptions, udp } from 'bun';
import dnsPacket from 'dns-packet';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';

export interface FakeQuery {
  bytes: Uint8Array;
  id: number;
  name: string;
  type: string;
  port: number;
  address: string;
  transport: 'udp' | 'tcp';
}

export interface FakeUpstreamTools {
  /** An answer to `q` with `answers` (defaults: one A record 192.0.2.1). */
  answerFor(q: FakeQuery, opts?: { id?: number; name?: string; answers?: dnsPacket.Answer[]; tc?: boolean }): Uint8Array;
  sendFromSelf(bytes: Uint8Array): void;
  sendFromOther(bytes: Uint8Array): void;
}

export type Script = (q: FakeQuery, t: FakeUpstreamTools) => Uint8Array | null | Promise<Uint8Array | null>;

export class FakeUpstream {
  readonly queries: FakeQuery[] = [];
  private constructor(
    private readonly sock: udp.Socket<'uint8array'>,
    private readonly other: udp.Socket<'uint8array'>,
    private readonly tcp: TCPSocketListener<{ reader: FrameReader }>,
  ) {}

  get port(): number {
    return this.sock.port;
  }

  /**
   * TCP takes the number of the UDP port the kernel picked, which another socket (a test's
   * outgoing TCP connection) may hold: EADDRINUSE is retried with a fresh port.
   */
  static async start(script: Script): Promise<FakeUpstream> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await FakeUpstream.startOnce(script);
      } catch (err) {
        if (attempt >= 20 || (err as { code?: string }).code !== 'EADDRINUSE') throw err;
      }
    }
  }

  private static async startOnce(script: Script): Promise<FakeUpstream> {
    const other = await Bun.udpSocket({ binaryType: 'uint8array', hostname: '127.0.0.1', port: 0, socket: { error: () => {} } });
    let self: FakeUpstream;
    const sock = await Bun.udpSocket({
      binaryType: 'uint8array',
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data: (s, data, port, address) => {
          const q = decodeQuery(data, port, address, 'udp');
          self.queries.push(q);
          const tools = self.tools(q, (b) => s.send(b, port, address), (b) => other.send(b, port, address));
          Promise.resolve(script(q, tools)).then((ans) => {
            if (ans) s.send(ans, port, address);
          });
        },
        error: () => {},
      },
    });
    const listen = (opts: TCPSocketListenOptions<{ reader: FrameReader }>): TCPSocketListener<{ reader: FrameReader }> => {
      try {
        return Bun.listen<{ reader: FrameReader }>(opts);
      } catch (err) {
        sock.close();
        other.close();
        throw err;
      }
    };
    const tcp = listen({
      hostname: '127.0.0.1',
      port: sock.port,
      socket: {
        open: (s) => {
          s.data = { reader: new FrameReader() };
        },
        data: (s, chunk) => {
          const r = s.data.reader.push(chunk);
          if (r.kind !== 'frames') {
            s.end();
            return;
          }
          for (const f of r.frames) {
            const q = decodeQuery(f, s.remotePort, s.remoteAddress, 'tcp');
            self.queries.push(q);
            const tools = self.tools(q, (b) => s.write(frame(b)), () => {});
            Promise.resolve(script(q, tools)).then((ans) => {
              if (ans) s.write(frame(ans));
            });
          }
        },
      },
    });
    self = new FakeUpstream(sock, other, tcp);
    return self;
  }

  private tools(q: FakeQuery, self: (b: Uint8Array) => unknown, other: (b: Uint8Array) => unknown): FakeUpstreamTools {
    return {
      answerFor,
      sendFromSelf: (b) => void self(b),
      sendFromOther: (b) => void other(b),
    };
  }

  stop(): void {
    this.sock.close();
    this.other.close();
    this.tcp.stop(true);
  }
}

function decodeQuery(bytes: Uint8Array, port: number, address: string, transport: 'udp' | 'tcp'): FakeQuery {
  const d = dnsPacket.decode(Buffer.from(bytes));
  const q = d.questions?.[0];
  return { bytes, id: d.id ?? 0, name: q?.name ?? '', type: q?.type ?? 'A', port, address, transport };
}

/** A NOERROR answer to `qq` (its ID and question unless `o` says otherwise; one A 192.0.2.1, TTL 60, by default). */
export function answerFor(qq: FakeQuery, o: { id?: number; name?: string; answers?: dnsPacket.Answer[]; tc?: boolean } = {}): Uint8Array {
  return new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: o.id ?? qq.id,
      flags: 0x8180 | (o.tc ? 0x0200 : 0),
      questions: [{ name: o.name ?? qq.name, type: qq.type as dnsPacket.RecordType, class: 'IN' }],
      answers: o.answers ?? [{ name: qq.name, type: 'A', ttl: 60, class: 'IN', data: '192.0.2.1' }],
    } as dnsPacket.Packet),
  );
}
