// Merge a LoRA adapter into its base model and write a plain Hugging Face model folder:
// each targeted weight becomes W + (alpha / r)·B·A, computed on the host in float64 from the
// base file's values and the adapter's f32 A and B, then rounded ONCE to the output dtype
// (bf16 by default, round-to-nearest-even straight from float64; or f32). Every other tensor is
// copied (bit for bit when the dtype is unchanged). The folder loads like any HF checkpoint, with
// our loader or `AutoModelForCausalLM.from_pretrained`:
//
//   model.safetensors, or model-0000i-of-0000N.safetensors + model.safetensors.index.json when the
//     tensors exceed maxShardBytes (default 5 GB, as transformers' save_pretrained)
//   config.json: the base file's bytes with only the dtype value edited in place (torch_dtype /
//     dtype, the spellings it has), so every other number stays as written ("factor": 32.0 stays
//     32.0: transformers warns when rope fields read back as integers);
//   generation_config.json and every tokenizer file the base has (COPIED_FILES), byte for byte.
//
// The CLI (`fuse-studio export merged`) and the studio (Export page, worker/export-service.ts)
// both call mergeAdapter; only the sink differs (a folder, a zip, a picked directory).
//
// Memory: one tensor at a time (a targeted projection in float64 is at most a few hundred MB for
// 8B models); shards are streamed to the sink tensor by tensor, so nothing holds a whole shard.

import { decode, f32ToBf16Bits, type DType } from '../gpu/dtype';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { shardFileName } from '../model/demo';
import { INDEX_FILE, planTensors, SINGLE_FILE, weightFiles } from '../model/load';
import { TARGET_WEIGHT } from '../model/lora';
import { readSafetensorsHeader, type SafetensorsDType, type SafetensorsHeader } from '../model/safetensors';
import type { ModelSource } from '../model/source';
import { expectedTensors, LAYER_TENSOR_NAMES } from '../model/weights';
import { checkAdapterFitsModel, deltaWeight, type HostAdapter } from './peft';

export type MergedDType = 'bf16' | 'f32';

/** Where the merged folder goes: a file is written from parts produced in order. */
export interface FolderSink {
  write(name: string, parts: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void>;
}

/** A sink collecting files in memory (browser download as a zip, tests). */
export function memorySink(): FolderSink & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    async write(name, parts) {
      const chunks: Uint8Array[] = [];
      for await (const p of parts) chunks.push(p.slice());
      const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
      files.set(name, out);
    },
  };
}

export interface MergeOptions {
  /** Output dtype of every tensor (default 'bf16'). */
  dtype?: MergedDType;
  /** Largest shard in bytes (default 5e9, transformers' "5GB"). */
  maxShardBytes?: number;
  /** Called after each tensor: its name and the tensors done / total. */
  onTensor?: (name: string, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface MergeReport {
  config: ModelConfig;
  /** Weight files written (one, or the shards), and the other files copied. */
  files: string[];
  /** Tensors that received an adapter update. */
  merged: string[];
  totalBytes: number;
}

/**
 * Files copied unchanged when the base has them: the generation defaults and every file a
 * transformers tokenizer may load (fast tokenizer.json; slow SentencePiece tokenizer.model or BPE
 * vocab.json + merges.txt; WordPiece vocab.txt; added and special tokens; the chat template,
 * standalone or in the older chat_template.json).
 */
export const COPIED_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'chat_template.jinja',
  'chat_template.json',
];

const ST: Record<MergedDType, SafetensorsDType> = { bf16: 'BF16', f32: 'F32' };
const TORCH: Record<MergedDType, string> = { bf16: 'bfloat16', f32: 'float32' };
const SRC_DTYPE: Record<SafetensorsDType, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * float64 -> bf16 bits, correctly rounded (nearest, ties to even). Going through f32 could round
 * twice: when the f32 rounding lands exactly halfway between two bf16 values (low half 0x8000)
 * the float64 value is really above or below that midpoint, and we round that way.
 */
export function f64ToBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0xffff) === 0x8000 && f32[0] !== x && Number.isFinite(f32[0]!)) {
    const away = Math.abs(x) > Math.abs(f32[0]!);
    return ((bits >>> 16) + (away ? 1 : 0)) & 0xffff;
  }
  return f32ToBf16Bits(f32[0]!);
}

/** Values as `dtype` bytes (exact length), rounded once from float64. */
export function encodeMerged(values: ArrayLike<number>, dtype: MergedDType): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f64ToBf16Bits(values[i]!);
  return new Uint8Array(out.buffer);
}

function bytesOf(n: number, dtype: MergedDType): number {
  return n * (dtype === 'f32' ? 4 : 2);
}

/** The safetensors header block (length prefix + JSON padded to 8 bytes) for tensors in order. */
export function safetensorsHeaderBytes(tensors: readonly { name: string; dtype: SafetensorsDType; shape: readonly number[]; bytes: number }[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
    offset += t.bytes;
  }
  let json = JSON.stringify(header);
  const raw = new TextEncoder().encode(json).byteLength;
  json += ' '.repeat((8 - ((8 + raw) % 8)) % 8);
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.byteLength), true);
  out.set(body, 8);
  return out;
}

/** Which base weight (by HF name) each adapter module updates. */
function targetedNames(adapter: HostAdapter): Map<string, { layer: number; target: HostAdapter['targets'][number] }> {
  const out = new Map<string, { layer: number; target: HostAdapter['targets'][number] }>();
  adapter.layers.forEach((layer, l) => {
    for (const t of adapter.targets) if (layer[t]) out.set(`model.layers.${l}.${LAYER_TENSOR_NAMES[TARGET_WEIGHT[t]]}`, { layer: l, target: t });
  });
  return out;
}

const PIECE = 8 * 1024 * 1024;

/**
 * Where each top-level member's value lies in a JSON object's text: key -> [start, end). The text
 * must be valid JSON (the caller has parsed it); nested values are skipped over whole.
 */
export function topLevelValueSpans(text: string): Map<string, [number, number]> {
  const spans = new Map<string, [number, number]>();
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const skipString = () => {
    for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
    i++;
  };
  ws();
  if (text[i] !== '{') throw new Error('config.json: not a JSON object');
  i++;
  for (;;) {
    ws();
    if (text[i] === '}') return spans;
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    ws();
    i++; // ':'
    ws();
    const start = i;
    if (text[i] === '"') skipString();
    else if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      do {
        if (text[i] === '"') {
          skipString();
          continue;
        }
        if (text[i] === '{' || text[i] === '[') depth++;
        else if (text[i] === '}' || text[i] === ']') depth--;
        i++;
      } while (depth > 0);
    } else while (i < text.length && !',}] \t\r\n'.includes(text[i]!)) i++;
    spans.set(key, [start, i]);
    ws();
    if (text[i] === ',') i++;
  }
}

/**
 * config.json with its dtype set to `torchDtype`, edited in the text: the value of `torch_dtype`
 * and/or `dtype` (the spellings present; `dtype` when neither is) is replaced and nothing else
 * changes, so numbers keep the form the base wrote them in. Unchanged bytes when it already says so.
 */
export function configWithDtype(bytes: Uint8Array, torchDtype: string): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  const spans = topLevelValueSpans(text);
  const value = JSON.stringify(torchDtype);
  const edits: { at: [number, number]; text: string }[] = [];
  for (const key of ['torch_dtype', 'dtype']) {
    const at = spans.get(key);
    if (at && text.slice(at[0], at[1]) !== value) edits.push({ at, text: value });
  }
  if (!spans.has('torch_dtype') && !spans.has('dtype')) {
    // Add it after the last member, indented like the first one.
    const last = [...spans.values()].reduce((a, b) => (b[1] > a[1] ? b : a), [text.indexOf('{') + 1, text.indexOf('{') + 1] as [number, number]);
    const indent = /^\{([ \t\r\n]*)"/.exec(text.trimStart())?.[1] ?? '';
    const sep = indent.includes('\n') ? indent : ' ';
    edits.push({ at: [last[1], last[1]], text: `${spans.size ? ',' : ''}${sep}"dtype": ${value}` });
  }
  if (!edits.length) return bytes;
  let out = text;
  for (const e of edits.sort((a, b) => b.at[0] - a.at[0])) out = out.slice(0, e.at[0]) + e.text + out.slice(e.at[1]);
  return new TextEncoder().encode(out);
}

/** Merge `adapter` into the model `source` holds and write the merged folder into `sink`. */
export async function mergeAdapter(source: ModelSource, adapter: HostAdapter, sink: FolderSink, options: MergeOptions = {}): Promise<MergeReport> {
  const dtype = options.dtype ?? 'bf16';
  const maxShard = options.maxShardBytes ?? 5e9;
  const { signal } = options;
  const configFile = await source.open('config.json', { signal });
  const configBytes = await configFile.read(0, configFile.size);
  let rawConfig: Record<string, unknown>;
  try {
    rawConfig = JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`config.json: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const config = parseModelConfig(rawConfig);
  checkAdapterFitsModel(adapter, config, 'merge: adapter');

  const { files: weightNames, index } = await weightFiles(source, config, signal);
  const shards = new Map<string, Awaited<ReturnType<ModelSource['open']>>>();
  const headers: SafetensorsHeader[] = [];
  for (const name of weightNames) {
    const src = await source.open(name, { signal });
    shards.set(name, src);
    headers.push(await readSafetensorsHeader(src));
  }
  const plan = planTensors(config, headers, index);
  const targeted = targetedNames(adapter);

  // Output tensors in checkpoint order, grouped into shards of at most maxShard bytes.
  const expected = [...expectedTensors(config)];
  const out = expected.map(([name, shape]) => ({ name, shape, dtype: ST[dtype], bytes: bytesOf(shape.reduce((a, b) => a * b, 1), dtype) }));
  const groups: (typeof out)[] = [];
  let cur: typeof out = [];
  let curBytes = 0;
  for (const t of out) {
    if (cur.length && curBytes + t.bytes > maxShard) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += t.bytes;
  }
  groups.push(cur);
  const totalBytes = out.reduce((s, t) => s + t.bytes, 0);
  const fileNames = groups.length === 1 ? [SINGLE_FILE] : groups.map((_, i) => shardFileName(i, groups.length));

  let done = 0;
  const merged: string[] = [];
  async function* tensorParts(t: (typeof out)[number]): AsyncGenerator<Uint8Array> {
    signal?.throwIfAborted();
    const at = plan.tensors.get(t.name)!;
    const src = shards.get(at.file)!;
    const inDtype = SRC_DTYPE[at.entry.dtype];
    const n = t.shape.reduce((a, b) => a * b, 1);
    const mod = targeted.get(t.name);
    if (mod) {
      const base = decode((await src.read(at.entry.begin, at.entry.end - at.entry.begin)).buffer, n, inDtype);
      const delta = deltaWeight(adapter, mod.layer, mod.target);
      for (let i = 0; i < n; i++) delta[i] += base[i]!;
      merged.push(t.name);
      yield encodeMerged(delta, dtype);
    } else if (ST[dtype] === at.entry.dtype) {
      for (let o = at.entry.begin; o < at.entry.end; o += PIECE) yield await src.read(o, Math.min(PIECE, at.entry.end - o));
    } else {
      const width = at.entry.dtype === 'F32' ? 4 : 2;
      const per = PIECE / width;
      for (let i = 0; i < n; i += per) {
        const k = Math.min(per, n - i);
        const values = decode((await src.read(at.entry.begin + i * width, k * width)).buffer, k, inDtype);
        // Widening (bf16/f16 -> f32) is exact; narrowing rounds once.
        yield encodeMerged(values, dtype);
      }
    }
    options.onTensor?.(t.name, ++done, out.length);
  }
  async function* shardParts(group: typeof out): AsyncGenerator<Uint8Array> {
    yield safetensorsHeaderBytes(group, { format: 'pt' });
    for (const t of group) yield* tensorParts(t);
  }

  const written: string[] = [];
  for (let i = 0; i < groups.length; i++) {
    await sink.write(fileNames[i]!, shardParts(groups[i]!));
    written.push(fileNames[i]!);
  }
  const enc = new TextEncoder();
  if (groups.length > 1) {
    const weightMap: Record<string, string> = {};
    groups.forEach((g, i) => g.forEach((t) => (weightMap[t.name] = fileNames[i]!)));
    await sink.write(INDEX_FILE, [enc.encode(JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2) + '\n')]);
    written.push(INDEX_FILE);
  }

  await sink.write('config.json', [configWithDtype(configBytes, TORCH[dtype])]);
  written.push('config.json');
  for (const name of COPIED_FILES) {
    if (!(await source.has(name, { signal }))) continue;
    const f = await source.open(name, { signal });
    await sink.write(name, [await f.read(0, f.size)]);
    written.push(name);
  }
  return { config, files: written, merged, totalBytes };
}
