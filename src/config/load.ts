/**
 * Config loading: YAML file (or the embedded default) → flags on top → checked Config.
 * Every error is a ConfigError located at `file:line` or at the `--flag`.
 */
import { readFileSync } from 'node:fs';
import { readTextFile } from '../util/text-file.ts';
import type { Config } from './types.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import { emptyDraft, type Draft } from './draft.ts';
import { YamlDoc } from './yaml-doc.ts';
import { applyFlags, applyYaml } from './apply.ts';
import { POLICY_FLAGS } from './settings.ts';
import { finalize } from './finalize.ts';
import { RESOLV_PATHS } from './resolv.ts';
import defaultYaml from './default.yaml' with { type: 'text' };

export const EMBEDDED_SOURCE = '<embedded default>';
export const EMBEDDED_DEFAULT: string = defaultYaml;

export interface LoadDeps {
  /** Reads a file or throws. */
  readFile(path: string): string;
  /** resolv.conf contents in order of preference. */
  resolvTexts(): string[];
  /** The embedded default config text (tests pass their own). */
  embeddedDefault?: string;
  /** Wall-clock ms TLS certificates must be valid at (default: now; tests pass their own). */
  nowMs?(): number;
}

/** Reads a config, rules, hosts or key file (a device refused: src/util/text-file.ts). */
export const readConfigFile = readTextFile;

/** Real file access: the only place config touches the file system. */
export const fileDeps: LoadDeps = {
  readFile: readConfigFile,
  resolvTexts: () => {
    const out: string[] = [];
    for (const p of RESOLV_PATHS) {
      try {
        out.push(readFileSync(p, 'utf8'));
      } catch {
        /* absent: try the next */
      }
    }
    return out;
  },
};

/** Loads the config named by `--config` (or the embedded default) with flags applied. */
export function loadConfig(values: Map<string, string[]>, deps: LoadDeps = fileDeps): Config {
  return finalize(readDraft(values, deps).draft, deps);
}

/** The file's text as read (absent when it could not be read or parsed), its name and the draft. */
export interface DraftRead {
  draft: Draft;
  source: string;
  text?: string;
  doc?: YamlDoc;
}

/**
 * The file (or the embedded default) and the flags, read into a draft, unchecked as a whole
 * (finalize.ts does that). Problems throw — or, with `report` (`dnsseal check`, which reports
 * every problem in one pass), are reported and reading goes on with what could be read: after
 * an unreadable or unparsable file only the flags are read.
 */
export function readDraft(values: Map<string, string[]>, deps: LoadDeps, report?: (err: ConfigError) => void): DraftRead {
  const path = values.get('config')?.at(-1);
  let text: string | undefined;
  let source: string;
  if (path === undefined) {
    text = deps.embeddedDefault ?? EMBEDDED_DEFAULT;
    source = EMBEDDED_SOURCE;
  } else if (path === 'none') {
    text = '';
    source = '<flags>';
  } else if (path === '') {
    // `--config=` (an unset variable in a unit file, say): say so rather than "cannot read "
    const e = new ConfigError('--config', 'needs a value: --config FILE (or --config none for built-in defaults)');
    if (!report) throw e;
    report(e);
    source = '<flags>';
  } else {
    source = path;
    try {
      text = deps.readFile(path);
    } catch (err) {
      const e = new ConfigError('--config', `cannot read ${path}: ${errorMessage(err).replace(/^.*?: /, '')}`, { cause: err });
      if (!report) throw e;
      report(e);
    }
  }
  const draft = emptyDraft(source);
  const out: DraftRead = { draft, source };
  if (text !== undefined) {
    out.text = text;
    try {
      out.doc = new YamlDoc(source, text);
      applyYaml(out.doc, draft, deps);
    } catch (err) {
      if (!report || !(err instanceof ConfigError)) throw err;
      report(err);
    }
  }
  if (path === undefined && POLICY_FLAGS.some((f) => values.has(f))) {
    // rules given on the command line replace the embedded example rules instead of mixing in
    draft.exampleChannels = [...draft.channels.keys()];
    draft.channels.clear();
    draft.tables.clear();
    draft.clients = [];
    draft.statics = [];
    draft.source = `${EMBEDDED_SOURCE} with rules from flags`;
  }
  applyFlags(values, draft, deps, report);
  return out;
}

/**
 * Loads a config from text (tests, `reload` of an edited file). `role: 'policy-server'`: the file
 * describes the tables a policy server serves, not a node — the checks that tie clients and
 * statics to the node's mode do not apply.
 */
export function loadConfigText(
  text: string,
  source: string,
  values: Map<string, string[]> = new Map(),
  deps: LoadDeps = fileDeps,
  role: 'node' | 'policy-server' = 'node',
): Config {
  const draft = emptyDraft(source);
  draft.role = role;
  applyYaml(new YamlDoc(source, text), draft, deps);
  applyFlags(values, draft, deps);
  return finalize(draft, deps);
}
