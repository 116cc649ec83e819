// Project bundles and the zip files the Export page writes and reads. Pure (browser and Node).
//
// A project bundle is one zip an educator prepares and a workshop loads:
//
//   project.json                         format, model spec, sources WITHOUT keys, settings
//                                        (judge, training configs) without keys, the data run, adapters
//   datasets/<artifact>                  the Data page's run artifacts (sft.jsonl, dpo.jsonl, report.json…)
//   adapters/<name>/adapter_config.json  each adapter as its PEFT files
//   adapters/<name>/adapter_model.safetensors
//
// Secrets never leave: API keys and anything stored under a secret-looking field (apiKey,
// Authorization, token, password…) are blanked, and as a last guard every text file of the bundle
// is searched for each key the sources and settings held; a hit refuses to build the bundle.

import { unzipSync, zipSync, type Zippable } from 'fflate';
import type { SourceEntry } from './studioDb';

export const BUNDLE_FORMAT = 'fuse-studio-project';
export const BUNDLE_VERSION = 1;
export const PROJECT_FILE = 'project.json';
const PEFT_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

export class BundleError extends Error {
  override name = 'BundleError';
}

export interface BundleModel {
  /** The studio's model key ("demo", a cache id, a folder name). */
  key: string;
  /** Where it was loaded from, as the Model page shows it. */
  source: string;
  /** The Hub id written as base_model_name_or_path. */
  baseModel: string;
  /** The parsed config (shape), for the record. */
  config: unknown;
}

export interface BundleAdapter {
  name: string;
  note: string;
  createdAt: string;
  /** The adapter it continues (by name, in the same project), or null. */
  parent?: string | null;
  /** How it was made: 'sft', 'dpo', 'imported'. */
  kind?: string;
  /** The PEFT files by name. */
  files: Record<string, Uint8Array>;
}

export interface BundleDataRun {
  runId: string;
  /** The Data page's run document (imports, overrides, edits), or null. */
  doc: unknown;
  /** Artifacts by name. */
  artifacts: Record<string, string>;
}

export interface BundleInput {
  model: BundleModel | null;
  sources: readonly SourceEntry[];
  /** The studio's settings rows (judge, training configs…). */
  settings: readonly { key: string; value: unknown }[];
  dataRun: BundleDataRun | null;
  adapters: readonly BundleAdapter[];
  /** The Train page's settings per stage (localStorage 'fuse-studio.trainSettings'), or null. */
  training?: unknown;
  createdAt?: string;
}

export interface ProjectJson {
  format: typeof BUNDLE_FORMAT;
  version: number;
  createdAt: string;
  model: BundleModel | null;
  sources: SourceEntry[];
  settings: Record<string, unknown>;
  /** The Train page's settings per stage ({sft, dpo}), or null. */
  training: unknown;
  dataRun: { runId: string; doc: unknown; artifacts: string[] } | null;
  adapters: { name: string; note: string; createdAt: string; parent?: string | null; kind?: string }[];
}

export interface ParsedBundle {
  project: ProjectJson;
  datasets: Record<string, string>;
  adapters: BundleAdapter[];
}

/** Field names whose values are secrets wherever they appear. */
const SECRET_FIELD = /^(api[-_]?key|x[-_]api[-_]key|authorization|proxy[-_]authorization|cookie|set[-_]cookie|password|passwd|secret|client[-_]?secret|token|(access|auth|bearer|hf|api|refresh|id)[-_]?token)$/i;

export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

/** A deep copy with every secret field blanked (''); the secrets found are added to `found`. */
export function scrubSecrets<T>(value: T, found: Set<string> = new Set()): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (isSecretField(k)) {
          if (typeof x === 'string' && x) found.add(x);
          out[k] = typeof x === 'string' ? '' : null;
        } else out[k] = walk(x);
      }
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

/** A source as a bundle carries it: no API key, no secret headers. */
export function sanitizeSourceEntry(e: SourceEntry, found: Set<string> = new Set()): SourceEntry {
  if (e.apiKey) found.add(e.apiKey);
  return { ...scrubSecrets(e, found), apiKey: '' };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

function checkName(kind: string, name: string): void {
  if (!NAME_RE.test(name) || name.length > 100) throw new BundleError(`${kind} name "${name}" may only hold letters, digits and . _ + - (and must start with a letter or digit)`);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The bundle's files by path. Throws BundleError when a secret would still be in it. */
export function buildBundle(input: BundleInput): Map<string, Uint8Array> {
  const secrets = new Set<string>();
  const sources = input.sources.map((s) => sanitizeSourceEntry(s, secrets));
  const settings: Record<string, unknown> = {};
  for (const row of input.settings) settings[row.key] = scrubSecrets(row.value, secrets);
  const files = new Map<string, Uint8Array>();
  const texts = new Map<string, string>();
  let dataRun: ProjectJson['dataRun'] = null;
  if (input.dataRun) {
    const names = Object.keys(input.dataRun.artifacts).sort();
    for (const n of names) {
      checkName('Dataset', n);
      texts.set(`datasets/${n}`, input.dataRun.artifacts[n]!);
    }
    dataRun = { runId: input.dataRun.runId, doc: scrubSecrets(input.dataRun.doc ?? null, secrets), artifacts: names };
  }
  const adapters: ProjectJson['adapters'] = [];
  for (const a of input.adapters) {
    checkName('Adapter', a.name);
    for (const f of PEFT_FILES) {
      const bytes = a.files[f];
      if (!bytes) throw new BundleError(`adapter "${a.name}" has no ${f}`);
      files.set(`adapters/${a.name}/${f}`, bytes);
    }
    adapters.push({ name: a.name, note: a.note, createdAt: a.createdAt, parent: a.parent ?? null, ...(a.kind ? { kind: a.kind } : {}) });
  }
  const project: ProjectJson = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    createdAt: input.createdAt ?? new Date().toISOString(),
    model: input.model ? scrubSecrets(input.model, secrets) : null,
    sources,
    settings,
    training: scrubSecrets(input.training ?? null, secrets),
    dataRun,
    adapters,
  };
  texts.set(PROJECT_FILE, JSON.stringify(project, null, 2) + '\n');
  // The last guard: no key may appear in any text we write (a dataset quoting one, a field we
  // did not know to be secret).
  for (const [path, text] of texts) {
    for (const s of secrets) if (s.length >= 4 && text.includes(s)) throw new BundleError(`${path} contains an API key or token from your settings; the bundle was not made. Remove it and try again.`);
    files.set(path, enc.encode(text));
  }
  for (const [path, bytes] of files) {
    if (!path.endsWith('.json')) continue;
    const text = dec.decode(bytes);
    for (const s of secrets) if (s.length >= 4 && text.includes(s)) throw new BundleError(`${path} contains an API key or token from your settings; the bundle was not made.`);
  }
  return files;
}

/** Reads a bundle's files (unzipped) back. Throws BundleError naming what is wrong. */
export function parseBundle(files: ReadonlyMap<string, Uint8Array>): ParsedBundle {
  // A bundle zipped from a folder may have one top-level directory: strip it.
  const prefix = commonPrefix([...files.keys()]);
  const at = (p: string) => files.get(prefix + p);
  const raw = at(PROJECT_FILE);
  if (!raw) throw new BundleError(`no ${PROJECT_FILE}: this is not a Fuse Studio project bundle`);
  let project: ProjectJson;
  try {
    project = JSON.parse(dec.decode(raw)) as ProjectJson;
  } catch (e) {
    throw new BundleError(`${PROJECT_FILE} is not valid JSON (${(e as Error).message})`);
  }
  if (project?.format !== BUNDLE_FORMAT) throw new BundleError(`${PROJECT_FILE} is not a Fuse Studio project (format "${String(project?.format)}")`);
  if (!(project.version >= 1 && project.version <= BUNDLE_VERSION)) throw new BundleError(`bundle version ${project.version} is newer than this studio reads (${BUNDLE_VERSION}): update the studio`);
  const datasets: Record<string, string> = {};
  for (const n of project.dataRun?.artifacts ?? []) {
    checkName('Dataset', n);
    const b = at(`datasets/${n}`);
    if (!b) throw new BundleError(`datasets/${n} is listed in ${PROJECT_FILE} but missing`);
    datasets[n] = dec.decode(b);
  }
  const adapters: BundleAdapter[] = [];
  for (const a of project.adapters ?? []) {
    checkName('Adapter', a.name);
    const out: Record<string, Uint8Array> = {};
    for (const f of PEFT_FILES) {
      const b = at(`adapters/${a.name}/${f}`);
      if (!b) throw new BundleError(`adapters/${a.name}/${f} is listed in ${PROJECT_FILE} but missing`);
      out[f] = b;
    }
    const parent = typeof a.parent === 'string' && NAME_RE.test(a.parent) ? a.parent : null;
    adapters.push({ name: a.name, note: a.note ?? '', createdAt: a.createdAt ?? '', files: out, parent, ...(typeof a.kind === 'string' ? { kind: a.kind } : {}) });
  }
  // Whatever the file says, keys are not taken from a bundle.
  project.sources = (project.sources ?? []).map((s) => sanitizeSourceEntry(s));
  project.settings = scrubSecrets(project.settings ?? {});
  project.training = scrubSecrets(project.training ?? null);
  return { project, datasets, adapters };
}

function commonPrefix(paths: string[]): string {
  if (paths.some((p) => p === PROJECT_FILE)) return '';
  const p = paths.find((x) => x.endsWith(`/${PROJECT_FILE}`));
  if (!p) return '';
  const prefix = p.slice(0, -PROJECT_FILE.length);
  return paths.every((x) => x.startsWith(prefix)) ? prefix : '';
}

/**
 * Sources to store after an import: the bundle's, keyed by id; a source this browser already
 * has keeps its own API key (the bundle has none).
 */
export function mergeImportedSources(imported: readonly SourceEntry[], existing: readonly SourceEntry[]): SourceEntry[] {
  const have = new Map(existing.map((e) => [e.id, e]));
  return imported.map((s) => ({ ...s, apiKey: have.get(s.id)?.apiKey ?? '' }));
}

// ---------------------------------------------------------------------------------------------
// Zips

/** A zip of `files`; safetensors and other binaries stored, text deflated. */
export function zipFiles(files: ReadonlyMap<string, Uint8Array | string>, folder = ''): Uint8Array {
  const z: Zippable = {};
  for (const [path, data] of files) {
    const bytes = typeof data === 'string' ? enc.encode(data) : data;
    const text = /\.(json|jsonl|md|txt|py|sh|yaml|yml|jinja)$/.test(path);
    z[folder ? `${folder}/${path}` : path] = [bytes, { level: text ? 6 : 0 }];
  }
  return zipSync(z);
}

/** The files of a zip by path (directories left out). */
export function unzipFiles(bytes: Uint8Array): Map<string, Uint8Array> {
  let raw: Record<string, Uint8Array>;
  try {
    raw = unzipSync(bytes);
  } catch (e) {
    throw new BundleError(`not a readable zip file (${(e as Error).message})`);
  }
  return new Map(Object.entries(raw).filter(([p]) => !p.endsWith('/') && !p.startsWith('__MACOSX/')));
}

const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/**
 * A PEFT adapter's files from what the user picked: a zip (the two files anywhere inside, once),
 * or the loose files. Names are matched by their last path part.
 */
export function peftFilesFromUpload(uploads: readonly { name: string; bytes: Uint8Array }[]): Map<string, Uint8Array> {
  const found = new Map<string, Uint8Array>();
  const take = (path: string, bytes: Uint8Array) => {
    const base = path.split('/').pop()!;
    if (!(PEFT_FILES as readonly string[]).includes(base) && base !== 'adapter_model.bin') return;
    if (found.has(base)) throw new BundleError(`${base} appears more than once: pick one adapter at a time`);
    found.set(base, bytes);
  };
  for (const u of uploads) {
    if (isZip(u.bytes)) for (const [p, b] of unzipFiles(u.bytes)) take(p, b);
    else take(u.name, u.bytes);
  }
  if (!found.size) throw new BundleError('no adapter_config.json or adapter_model.safetensors among the files: pick a PEFT adapter folder\'s two files or its zip');
  return found;
}

/**
 * An imported setting with its blanked secret fields filled from the local value at the same
 * place (a judge's reward key this browser already has is kept).
 */
export function keepLocalSecrets(imported: unknown, local: unknown): unknown {
  if (Array.isArray(imported)) return imported.map((v, i) => keepLocalSecrets(v, Array.isArray(local) ? local[i] : undefined));
  if (imported && typeof imported === 'object') {
    const l = local && typeof local === 'object' ? (local as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(imported)) {
      if (isSecretField(k) && (v === '' || v === null) && typeof l[k] === 'string' && l[k]) out[k] = l[k];
      else out[k] = keepLocalSecrets(v, l[k]);
    }
    return out;
  }
  return imported;
}

/**
 * The order to import a bundle's adapters in (an adapter after the one it continues) and, once
 * the ones before it are stored (`stored`: bundled name → name stored under), the name to ask
 * for: a child named after its parent follows the parent's new name.
 */
export function adapterImportOrder(adapters: readonly BundleAdapter[]): BundleAdapter[] {
  const byName = new Map(adapters.map((a) => [a.name, a]));
  const out: BundleAdapter[] = [];
  const seen = new Set<string>();
  const visit = (a: BundleAdapter, path: Set<string>) => {
    if (seen.has(a.name) || path.has(a.name)) return;
    path.add(a.name);
    const p = a.parent ? byName.get(a.parent) : undefined;
    if (p) visit(p, path);
    seen.add(a.name);
    out.push(a);
  };
  for (const a of adapters) visit(a, new Set());
  return out;
}

/** The name to import `a` under, given how its parent was stored (bundled name → stored name). */
export function adapterImportName(a: BundleAdapter, stored: ReadonlyMap<string, string>): string {
  const p = a.parent;
  const now = p ? stored.get(p) : undefined;
  if (p && now && now !== p && a.name.startsWith(`${p}+`)) return `${now}${a.name.slice(p.length)}`;
  return a.name;
}
