/**
 * `upstreams:` — name → its servers, in the order queries try them:
 *
 *   upstreams:
 *     default: [192.0.2.1, "tls://9.9.9.9#dns.quad9.net", "https://1.1.1.1/dns-query#cloudflare-dns.com"]
 *     lan: 192.168.1.1                                   # one server
 *     policy: { servers: ["tls://10.0.0.5#ps.corp.example"], tsig_key: fleet }
 *
 * (`address:` is the older spelling of `servers:` and still read.) Each server is parsed by
 * `parseServerSpec` (src/proxy/server-spec.ts), errors at its own line.
 *
 * `--upstream [NAME=]SERVER[,tsig-key=KEY]` (repeatable): the first flag for a name replaces the
 * file's servers for that name, the next ones append; without `tsig-key=` the name keeps the key
 * the file gave it.
 */
import { ConfigError, DnssealError, errorMessage } from '../../util/errors.ts';
import { parseServerSpec, type ServerSpec } from '../../proxy/server-spec.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import type { KeyPath } from '../yaml-locator.ts';
import { flagOptions } from './flag-text.ts';

export const SERVER_SYNTAX = '`ADDR[:PORT]` (plain DNS), `tls://ADDR[:PORT]#NAME` (DNS over TLS) or `https://ADDR[:PORT][/PATH]#NAME` (DNS over HTTPS)';

export const UPSTREAM_FIELDS: FieldDoc[] = [
  {
    key: 'servers',
    type: 'server or list of servers',
    doc: `Each ${SERVER_SYNTAX}; ADDR is an IP literal (IPv6 in brackets with a port: \`[2001:db8::1]:5353\`; a bare IPv6 that could end in a port, as \`::1:5353\`, is refused as ambiguous — \`[::1]:5353\` or \`[::1:5353]\`), NAME the name the server's certificate must be issued for (without it: the address). Queries go to the first server that is up; one that fails is skipped until a background probe gets an answer. At most 31. \`address:\` is read as the same.`,
  },
  { key: 'tsig_key', type: 'key name', doc: 'Sign queries to this upstream with this TSIG key (a policy server); works over every transport.' },
];

/** A server's text → spec; the message without parseServerSpec's component prefix. */
export function serverAt(text: string, where: string, name: string): ServerSpec {
  try {
    return parseServerSpec(text);
  } catch (err) {
    // `server "X": "X": why` (the address parser quotes the text again) → `server "X": why`
    const msg = err instanceof DnssealError ? err.message.replace(/^proxy: upstream server/, 'server').replace(/^(server "([^"]*)"): "\2": /, '$1: ') : errorMessage(err);
    throw new ConfigError(where, `upstream "${name}": ${msg}`, { cause: err });
  }
}

/**
 * A server list (a scalar or a sequence) at `path`, each item at its own line. A bad item is
 * recorded (with the others) and left out: the name still exists, so rules naming it do not
 * add an "unknown upstream" that only follows from it.
 */
function readServers(v: unknown, path: KeyPath, doc: YamlDoc, name: string): { servers: ServerSpec[]; where: string[] } {
  const items = v === undefined ? [] : Array.isArray(v) ? v : [v];
  const servers: ServerSpec[] = [];
  const where: string[] = [];
  if (Array.isArray(v) && items.length === 0) doc.section(() => doc.fail(path, `upstream "${name}" needs at least one server: ${SERVER_SYNTAX}`));
  items.forEach((item, i) => {
    const at = Array.isArray(v) ? [...path, i] : path;
    doc.section(() => {
      const text = doc.str(item, at, `upstream "${name}" server`);
      const w = doc.at(at);
      servers.push(serverAt(text, w, name));
      where.push(w);
    });
  });
  return { servers, where };
}

export function readUpstreams(upstreams: unknown, doc: YamlDoc, d: Draft): void {
  if (!isObj(upstreams)) doc.fail(['upstreams'], 'must be a mapping name → servers, e.g. "default: [192.0.2.1, 192.0.2.2]"');
  for (const [name, v] of doc.entries(upstreams, ['upstreams'])) {
    const path = ['upstreams', name];
    let list: unknown = v;
    let at: KeyPath = path;
    let tsigKey: string | undefined;
    if (isObj(v)) {
      doc.checkKeys(v, path, ['servers', 'address', 'tsig_key']);
      const key = v.servers !== undefined ? 'servers' : 'address';
      if (v.servers !== undefined && v.address !== undefined) {
        doc.section(() => doc.fail([...path, 'address'], `upstream "${name}": give servers or address (the older name of servers), not both`));
      }
      at = [...path, key];
      if (v[key] === undefined || v[key] === null) {
        // (a misspelt key was reported above: do not add that the servers are missing)
        if (Object.keys(v).every((k) => ['servers', 'address', 'tsig_key'].includes(k))) doc.section(() => doc.fail(path, `upstream "${name}" needs servers: ${SERVER_SYNTAX}`));
        list = undefined;
      } else list = v[key];
      if (v.tsig_key !== undefined) doc.section(() => (tsigKey = doc.str(v.tsig_key, [...path, 'tsig_key'], 'tsig_key')));
    } else if (v === null) {
      list = [];
    }
    const { servers, where } = readServers(list, at, doc, name);
    d.upstreams.set(name, {
      spec: { name, servers, ...(tsigKey ? { tsigKey } : {}) },
      where: doc.at(path),
      whereServers: where,
      whereTsig: doc.at([...path, 'tsig_key']),
    });
  }
}

/** An upstream name as a flag may give it before `=` (a server's text may hold `=` in a DoH path). */
const FLAG_NAME = /^[A-Za-z0-9_.-]+$/;

export function applyUpstreamFlags(texts: readonly string[], d: Draft): void {
  // the first flag for a name replaces the file's list, the next ones append
  const given = new Set<string>();
  for (const u of texts) {
    const { head, opts } = flagOptions('upstream', u, ['tsig-key']);
    const eq = head.indexOf('=');
    const named = eq > 0 && FLAG_NAME.test(head.slice(0, eq));
    const [name, text] = named ? [head.slice(0, eq), head.slice(eq + 1)] : ['default', head];
    const server = serverAt(text, '--upstream', name);
    const prev = d.upstreams.get(name);
    const keep = prev !== undefined && given.has(name);
    const tsigKey = opts.get('tsig-key') ?? prev?.spec.tsigKey;
    d.upstreams.set(name, {
      spec: { name, servers: keep ? [...prev.spec.servers, server] : [server], ...(tsigKey ? { tsigKey } : {}) },
      where: keep ? prev.where : '--upstream',
      whereServers: keep ? [...prev.whereServers, '--upstream'] : ['--upstream'],
      whereTsig: opts.has('tsig-key') ? '--upstream' : (prev?.whereTsig ?? '--upstream'),
    });
    given.add(name);
  }
}
