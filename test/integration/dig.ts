/** Runs dig/kdig without blocking the event loop (the proxy under test shares it). */
export interface DigResult {
  status: string;
  flags: string[];
  /** Answer, authority and additional records as dig prints them (TTL kept). */
  records: string[];
  raw: string;
}

export async function dig(server: string, port: number, args: string[]): Promise<DigResult> {
  const proc = Bun.spawn(['dig', `@${server}`, '-p', String(port), '+tries=1', '+timeout=3', '+nocookie', ...args], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const raw = await new Response(proc.stdout).text();
  await proc.exited;
  return parseDig(raw);
}

export async function kdig(server: string, port: number, args: string[]): Promise<DigResult> {
  const proc = Bun.spawn(['kdig', `@${server}`, '-p', String(port), '+retry=0', '+timeout=3', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const raw = await new Response(proc.stdout).text();
  await proc.exited;
  return parseDig(raw);
}

function parseDig(raw: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? 'NONE';
  const flagsLine = /;; [Ff]lags: ([a-z ]+);/.exec(raw)?.[1] ?? '';
  const records: string[] = [];
  let section = '';
  for (const line of raw.split('\n')) {
    const m = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (m) {
      section = m[1]!;
      continue;
    }
    if (line.startsWith(';') || line.trim() === '') {
      if (line.trim() === '') section = '';
      continue;
    }
    if (section) records.push(`${section} ${line.replace(/\s+/g, ' ').trim()}`);
  }
  return { status, flags: flagsLine.trim().split(/\s+/).filter(Boolean).sort(), records, raw };
}
