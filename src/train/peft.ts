// LoRA adapters in PEFT format: export what the studio trained so `peft.PeftModel.from_pretrained`
// loads it, and import adapters trained elsewhere (PEFT, TRL, LLaMA-Factory, Unsloth…) onto our
// GPU adapters. This is the project's one PEFT reader and writer; it is pure (browser and Node):
// files travel as Map<string, Uint8Array> (peft-node.ts reads and writes folders).
//
// A PEFT LoRA folder:
//   adapter_config.json        {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": [...], ...}
//   adapter_model.safetensors  base_model.model.model.layers.{i}.{self_attn|mlp}.{q_proj,…}.lora_A.weight [r, in]
//                              ….lora_B.weight [out, r]
// meaning W' = W + scale·B·A with scale = lora_alpha / r, or lora_alpha / √r with use_rslora.
//
// In memory an adapter is a HostAdapter: f32 A and B per layer and target and ONE scale
// `alpha / rank` (what our kernels apply). An rsLoRA adapter is imported exactly by folding its
// scale into the alpha: alpha' = lora_alpha·√r, so alpha' / r = lora_alpha / √r. We always export
// plain LoRA (use_rslora false) with that alpha, which PEFT reads back to the same scale.
//
// Import refuses, naming the field or tensor, what our forward cannot reproduce: DoRA
// (use_dora / lora_magnitude_vector), modules_to_save, trained biases (bias != "none",
// lora_bias), per-module rank_pattern / alpha_pattern, layer_replication, trainable tokens,
// embedding / lm_head adapters, and anything that is not LoRA.
//
// Two-stage (SFT then DPO) adapters: see combineAdapters below for the exact rank-(r1+r2) sum.

import { decode, encode, type DType } from '../gpu/dtype';
import type { ModelConfig } from '../model/config';
import {
  createLoraAdapters,
  LORA_TARGETS,
  peftTensorName,
  readLoraWeights,
  resolveLoraConfig,
  setLoraWeights,
  targetDims,
  type CreateLoraOptions,
  type LoraAdapters,
  type LoraTarget,
} from '../model/lora';
import type { HostLora } from '../model/reference';
import { parseSafetensorsHeader, SafetensorsError, writeSafetensors, type SafetensorsDType } from '../model/safetensors';
import type { GpuContext } from '../gpu/context';
import { checkBaseModelName, unknownBaseModelReadme } from './base-model';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Written beside them when the base model's name is unknown (base-model.ts). */
export const ADAPTER_README_FILE = 'README.md';

/** One adapted Linear layer on the host: A [r, in] and B [out, r], row-major f32. */
export interface HostAdapterModule {
  a: Float32Array;
  b: Float32Array;
}

/** A LoRA adapter on the host. The update of each targeted weight is (alpha / rank)·B·A. */
export interface HostAdapter {
  rank: number;
  /** Effective alpha: the scale is alpha / rank (rsLoRA imports are folded in, see the top). */
  alpha: number;
  targets: LoraTarget[];
  /** One entry per model layer; every target present in every layer. */
  layers: Partial<Record<LoraTarget, HostAdapterModule>>[];
}

export class PeftError extends Error {
  override name = 'PeftError';
}

export const adapterScale = (a: Pick<HostAdapter, 'rank' | 'alpha'>): number => a.alpha / a.rank;

// ---------------------------------------------------------------------------------------------
// GPU <-> host

/** Read a GPU adapter's A and B back to the host. */
export async function readHostAdapter(ctx: GpuContext, lora: LoraAdapters): Promise<HostAdapter> {
  const layers: HostAdapter['layers'] = [];
  for (let l = 0; l < lora.layers.length; l++) {
    const layer: HostAdapter['layers'][number] = {};
    for (const t of lora.config.targets) layer[t] = await readLoraWeights(ctx, lora, l, t);
    layers.push(layer);
  }
  return { rank: lora.config.rank, alpha: lora.config.alpha, targets: [...lora.config.targets], layers };
}

/** Write a host adapter into GPU adapters of the same rank, alpha and targets. */
export function writeHostAdapter(ctx: GpuContext, lora: LoraAdapters, host: HostAdapter): void {
  const c = lora.config;
  if (c.rank !== host.rank || c.alpha !== host.alpha || c.targets.length !== host.targets.length || host.targets.some((t) => !c.targets.includes(t)))
    throw new PeftError(
      `adapter (rank ${host.rank}, alpha ${host.alpha}, ${host.targets.join(',')}) does not fit GPU adapters of rank ${c.rank}, alpha ${c.alpha}, ${c.targets.join(',')}`,
    );
  if (host.layers.length !== lora.layers.length)
    throw new PeftError(`adapter has ${host.layers.length} layers, the model ${lora.layers.length}`);
  host.layers.forEach((layer, l) => {
    for (const t of host.targets) {
      const m = layer[t];
      if (!m) throw new PeftError(`adapter: layer ${l} has no ${t}`);
      setLoraWeights(ctx, lora, l, t, m.a, m.b);
    }
  });
}

/** Allocate GPU adapters shaped like `host` and fill them (trainable by default: grads and zeroed moments). */
export function createAdaptersFromHost(ctx: GpuContext, model: ModelConfig, host: HostAdapter, options: CreateLoraOptions = {}): LoraAdapters {
  checkAdapterFitsModel(host, model);
  const lora = createLoraAdapters(ctx, model, { rank: host.rank, alpha: host.alpha, targets: host.targets }, options);
  try {
    writeHostAdapter(ctx, lora, host);
  } catch (e) {
    lora.release();
    throw e;
  }
  return lora;
}

/** The float64 reference's adapter (reference.ts) for a host adapter. */
export function toHostLora(host: HostAdapter): HostLora {
  return {
    rank: host.rank,
    alpha: host.alpha,
    layers: host.layers.map((layer) => {
      const out: HostLora['layers'][number] = {};
      for (const [t, m] of Object.entries(layer) as [LoraTarget, HostAdapterModule][]) out[t] = { a: Float64Array.from(m.a), b: Float64Array.from(m.b) };
      return out;
    }),
  };
}

/** A host adapter from the reference's float64 one (values rounded to f32). */
export function fromHostLora(lora: HostLora, targets?: readonly LoraTarget[]): HostAdapter {
  const ts = targets ? [...targets] : LORA_TARGETS.filter((t) => lora.layers[0]?.[t]);
  return {
    rank: lora.rank,
    alpha: lora.alpha,
    targets: ts,
    layers: lora.layers.map((layer) => {
      const out: HostAdapter['layers'][number] = {};
      for (const t of ts) {
        const m = layer[t];
        if (m) out[t] = { a: Float32Array.from(m.a), b: Float32Array.from(m.b) };
      }
      return out;
    }),
  };
}

/** Throw unless every layer has every target with A [r, in] and B [out, r] for this model. */
export function checkAdapterFitsModel(host: HostAdapter, model: ModelConfig, where = 'adapter'): void {
  resolveLoraConfig({ rank: host.rank, alpha: host.alpha, targets: host.targets });
  if (host.layers.length !== model.numLayers)
    throw new PeftError(`${where}: has ${host.layers.length} layers but the model has ${model.numLayers} (num_hidden_layers)`);
  host.layers.forEach((layer, l) => {
    for (const t of host.targets) {
      const m = layer[t];
      if (!m) throw new PeftError(`${where}: layer ${l} has no ${t} adapter`);
      const [inF, outF] = targetDims(model, t);
      if (m.a.length !== host.rank * inF) throw new PeftError(`${where}: layer ${l} ${t} lora_A has ${m.a.length} values, expected [${host.rank}, ${inF}]`);
      if (m.b.length !== outF * host.rank) throw new PeftError(`${where}: layer ${l} ${t} lora_B has ${m.b.length} values, expected [${outF}, ${host.rank}]`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Export

export interface PeftExportOptions {
  /**
   * base_model_name_or_path: the base model's Hub repo id or an absolute path, '' when unknown
   * (default). A URL or a relative path is refused (base-model.ts: resolveBaseModelName).
   */
  baseModel?: string;
  /**
   * Where the base model was loaded from, for a user-facing export: when baseModel is '' the
   * files get a README.md saying what to put in base_model_name_or_path.
   */
  loadedFrom?: string;
  /** Tensor dtype in adapter_model.safetensors (default 'f32', what we train in). */
  dtype?: 'f32' | 'bf16';
  /** Written as lora_dropout (informational at inference; default 0). */
  loraDropout?: number;
  /** Extra `__metadata__` entries of the safetensors file ("format": "pt" is always set). */
  metadata?: Record<string, string>;
}

/**
 * adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (sorted keys, indent 2).
 * We write the fields LoraConfig has had since PEFT 0.10 (all at their defaults apart from
 * r / lora_alpha / target_modules / base model): PEFT < 0.14 raises TypeError on a config key it
 * does not know (huggingface/peft#2038 made later versions ignore them), so fields added later
 * (lora_bias, exclude_modules, eva_config, corda_config, trainable_token_indices, …) are left
 * out: newer PEFT versions fill them with the same defaults.
 */
export function peftAdapterConfig(host: Pick<HostAdapter, 'rank' | 'alpha' | 'targets'>, options: PeftExportOptions = {}): Record<string, unknown> {
  const config: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: options.baseModel ?? '',
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: host.alpha,
    lora_dropout: options.loraDropout ?? 0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: host.rank,
    rank_pattern: {},
    revision: null,
    // PEFT keeps a set and writes it as a list; keep the model's order for readability.
    target_modules: LORA_TARGETS.filter((t) => host.targets.includes(t)),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  return Object.fromEntries(Object.keys(config).sort().map((k) => [k, config[k]]));
}

const ST_DTYPE: Record<'f32' | 'bf16', SafetensorsDType> = { f32: 'F32', bf16: 'BF16' };

/** The two files of a PEFT adapter folder. Tensors are named and shaped as PEFT saves them. */
export function exportPeftAdapter(host: HostAdapter, options: PeftExportOptions = {}): Map<string, Uint8Array> {
  const dtype = options.dtype ?? 'f32';
  let baseModel: string;
  try {
    baseModel = checkBaseModelName(options.baseModel ?? '', 'base_model_name_or_path');
  } catch (e) {
    throw new PeftError(`export: ${(e as Error).message}`, { cause: e });
  }
  const tensors: { name: string; dtype: SafetensorsDType; shape: number[]; data: Uint8Array }[] = [];
  const inOut = (m: HostAdapterModule): [number, number] => [m.a.length / host.rank, m.b.length / host.rank];
  host.layers.forEach((layer, l) => {
    for (const t of LORA_TARGETS) {
      const m = layer[t];
      if (!m || !host.targets.includes(t)) continue;
      const [inF, outF] = inOut(m);
      if (!Number.isInteger(inF) || !Number.isInteger(outF)) throw new PeftError(`export: layer ${l} ${t} sizes are not multiples of rank ${host.rank}`);
      tensors.push({ name: peftTensorName(l, t, 'A'), dtype: ST_DTYPE[dtype], shape: [host.rank, inF], data: tensorData(m.a, dtype) });
      tensors.push({ name: peftTensorName(l, t, 'B'), dtype: ST_DTYPE[dtype], shape: [outF, host.rank], data: tensorData(m.b, dtype) });
    }
  });
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>([
    [ADAPTER_CONFIG_FILE, enc.encode(JSON.stringify(peftAdapterConfig(host, { ...options, baseModel }), null, 2) + '\n')],
    [ADAPTER_WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt', ...options.metadata })],
  ]);
  if (!baseModel && options.loadedFrom !== undefined) files.set(ADAPTER_README_FILE, enc.encode(unknownBaseModelReadme(options.loadedFrom)));
  return files;
}

/** Exact-size bytes (encode pads 16-bit tensors to whole words). */
function tensorData(values: Float32Array, dtype: DType): Uint8Array {
  const bytes = encode(values, dtype);
  const n = values.length * (dtype === 'f32' ? 4 : 2);
  return bytes.byteLength === n ? bytes : bytes.subarray(0, n);
}

// ---------------------------------------------------------------------------------------------
// Import

export interface PeftImportResult {
  adapter: HostAdapter;
  /** base_model_name_or_path, or null when absent / empty. */
  baseModel: string | null;
  /** The parsed adapter_config.json. */
  config: Record<string, unknown>;
  /** Things accepted but worth telling the user (e.g. rsLoRA folded into alpha, layers without adapters). */
  notes: string[];
}

const KEY_RE = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.([A-Za-z0-9_]+)\.lora_([AB])(?:\.([A-Za-z0-9_-]+))?\.weight$/;
const BLOCK: Record<LoraTarget, 'self_attn' | 'mlp'> = {
  q_proj: 'self_attn',
  k_proj: 'self_attn',
  v_proj: 'self_attn',
  o_proj: 'self_attn',
  gate_proj: 'mlp',
  up_proj: 'mlp',
  down_proj: 'mlp',
};

const isEmpty = (v: unknown) => v === undefined || v === null || v === false || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0);

function refuseIf(cond: boolean, message: string): void {
  if (cond) throw new PeftError(`${ADAPTER_CONFIG_FILE}: ${message}`);
}

/** Parse and check adapter_config.json; returns rank, PEFT alpha, rsLoRA flag and the listed targets. */
export function parsePeftConfig(raw: unknown): { rank: number; loraAlpha: number; useRslora: boolean; targetModules: string[] | string | null; config: Record<string, unknown> } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PeftError(`${ADAPTER_CONFIG_FILE}: must be a JSON object`);
  const c = raw as Record<string, unknown>;
  const type = c.peft_type;
  refuseIf(type !== 'LORA', `peft_type is ${JSON.stringify(type)}; only LoRA adapters ("LORA") are supported`);
  const task = c.task_type;
  refuseIf(task !== undefined && task !== null && task !== 'CAUSAL_LM', `task_type is ${JSON.stringify(task)}; only CAUSAL_LM adapters fit a causal language model`);
  const r = c.r;
  refuseIf(!Number.isInteger(r) || (r as number) < 1, `"r" must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = c.lora_alpha ?? 8; // PEFT's default
  refuseIf(typeof alpha !== 'number' || !(alpha > 0), `"lora_alpha" must be a positive number, got ${JSON.stringify(alpha)}`);
  refuseIf(c.use_dora === true, 'use_dora is true: DoRA adapters (a learned magnitude per output) are not supported; train or export a plain LoRA adapter');
  refuseIf(!isEmpty(c.modules_to_save), `modules_to_save is ${JSON.stringify(c.modules_to_save)}: adapters that also replace whole modules (e.g. lm_head, embed_tokens) are not supported`);
  refuseIf(c.bias !== undefined && c.bias !== 'none', `bias is ${JSON.stringify(c.bias)}: adapters with trained biases are not supported (only "none")`);
  refuseIf(c.lora_bias === true, 'lora_bias is true: a bias on lora_B is not supported');
  refuseIf(!isEmpty(c.rank_pattern), `rank_pattern ${JSON.stringify(c.rank_pattern)}: per-module ranks are not supported (one rank for every module)`);
  refuseIf(!isEmpty(c.alpha_pattern), `alpha_pattern ${JSON.stringify(c.alpha_pattern)}: per-module alphas are not supported (one lora_alpha for every module)`);
  refuseIf(!isEmpty(c.layer_replication), 'layer_replication is set: adapters that duplicate layers are not supported');
  refuseIf(!isEmpty(c.trainable_token_indices), 'trainable_token_indices is set: trainable-token embeddings are not supported');
  refuseIf(!isEmpty(c.target_parameters), 'target_parameters is set: adapters on raw parameters are not supported');
  refuseIf(c.use_qalora === true, 'use_qalora is true: QA-LoRA adapters are not supported');
  refuseIf(!isEmpty(c.alora_invocation_tokens), 'alora_invocation_tokens is set: activated LoRA is not supported');
  refuseIf(c.use_rslora !== undefined && typeof c.use_rslora !== 'boolean', `use_rslora must be true or false, got ${JSON.stringify(c.use_rslora)}`);
  const tm = c.target_modules;
  refuseIf(!(tm === undefined || tm === null || typeof tm === 'string' || (Array.isArray(tm) && tm.every((x) => typeof x === 'string'))), `target_modules must be a list of names or a string, got ${JSON.stringify(tm)}`);
  return { rank: r as number, loraAlpha: alpha as number, useRslora: c.use_rslora === true, targetModules: (tm as string[] | string | null | undefined) ?? null, config: c };
}

/**
 * Import a PEFT LoRA adapter (its files by name) for a model of `model`'s shape. Checks the config
 * (see parsePeftConfig), every tensor name, shape and dtype (F32/F16/BF16; .bin pickles are refused)
 * against the model, and that every layer has A and B for every target. Layers a PEFT
 * `layers_to_transform` left out get zero A and B (an exact no-op), so all layers carry the adapter.
 */
export function importPeftAdapter(files: ReadonlyMap<string, Uint8Array>, model: ModelConfig): PeftImportResult {
  const cfgBytes = files.get(ADAPTER_CONFIG_FILE);
  if (!cfgBytes) throw new PeftError(`no ${ADAPTER_CONFIG_FILE}: not a PEFT adapter folder`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(cfgBytes));
  } catch (e) {
    throw new PeftError(`${ADAPTER_CONFIG_FILE}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const { rank, loraAlpha, useRslora, targetModules, config } = parsePeftConfig(raw);
  const notes: string[] = [];

  const weights = files.get(ADAPTER_WEIGHTS_FILE);
  if (!weights) {
    if (files.has('adapter_model.bin'))
      throw new PeftError(`only adapter_model.bin (a PyTorch pickle) is present: convert it to ${ADAPTER_WEIGHTS_FILE} (safe_serialization=True)`);
    throw new PeftError(`no ${ADAPTER_WEIGHTS_FILE}`);
  }
  const header = safetensorsHeaderOf(ADAPTER_WEIGHTS_FILE, weights);

  // Every tensor must be a LoRA A/B of a Linear we adapt.
  const found = new Map<string, { layer: number; target: LoraTarget; which: 'A' | 'B'; name: string }>();
  const adapterNames = new Set<string>();
  for (const name of header.tensors.keys()) {
    if (/lora_magnitude_vector/.test(name)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" is a DoRA magnitude vector; DoRA adapters are not supported`);
    if (/lora_embedding_[AB]/.test(name)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" adapts the embedding; embedding adapters are not supported`);
    if (/modules_to_save|original_module/.test(name) || /(^|\.)(lm_head|embed_tokens)\.weight$/.test(name))
      throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" is a full module copy (modules_to_save); not supported`);
    const m = KEY_RE.exec(name);
    if (!m) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: unexpected tensor "${name}" (expected base_model.model.model.layers.N.{self_attn|mlp}.<proj>.lora_A/lora_B.weight)`);
    const [, layerText, block, module, which, adapterName] = m;
    const layer = Number(layerText);
    if (!(LORA_TARGETS as readonly string[]).includes(module!))
      throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" adapts "${module}", which a decoder layer does not have (${LORA_TARGETS.join(', ')})`);
    const target = module as LoraTarget;
    if (BLOCK[target] !== block) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}": ${target} lives in ${BLOCK[target]}, not ${block}`);
    if (layer >= model.numLayers)
      throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" is for layer ${layer} but the model has ${model.numLayers} layers: the adapter was trained on another model`);
    if (adapterName !== undefined) adapterNames.add(adapterName);
    const key = `${layer}.${target}.${which}`;
    if (found.has(key)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: "${name}" and "${found.get(key)!.name}" are the same tensor`);
    found.set(key, { layer, target, which: which as 'A' | 'B', name });
  }
  if (found.size === 0) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: holds no LoRA tensors`);
  if (adapterNames.size > 1) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: holds several adapters (${[...adapterNames].join(', ')}); export one at a time`);

  const present = new Set([...found.values()].map((f) => f.target));
  const targets = LORA_TARGETS.filter((t) => present.has(t));
  // target_modules must cover what the file holds; names it lists but the file lacks are checked too.
  if (Array.isArray(targetModules)) {
    const listed = new Set(targetModules);
    const expanded = listed.has('all-linear') ? new Set<string>(LORA_TARGETS) : listed;
    for (const t of targets)
      if (!expanded.has(t)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: has ${t} adapters but target_modules ${JSON.stringify(targetModules)} does not list ${t}`);
    for (const name of listed) {
      if (name === 'lm_head' || name === 'embed_tokens') throw new PeftError(`${ADAPTER_CONFIG_FILE}: target_modules lists ${name}; adapters on ${name} are not supported`);
      if ((LORA_TARGETS as readonly string[]).includes(name) && !present.has(name as LoraTarget))
        throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: target_modules lists ${name} but the file has no ${name} tensors`);
    }
  } else if (typeof targetModules === 'string' && targetModules !== 'all-linear') {
    notes.push(`target_modules is the pattern ${JSON.stringify(targetModules)}; the targets were taken from the tensors: ${targets.join(', ')}`);
  }

  const layers: HostAdapter['layers'] = Array.from({ length: model.numLayers }, () => ({}));
  const missingLayers: number[] = [];
  for (let l = 0; l < model.numLayers; l++) {
    let any = false;
    for (const t of targets) {
      const a = found.get(`${l}.${t}.A`);
      const b = found.get(`${l}.${t}.B`);
      if (!a !== !b) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: layer ${l} ${t} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`);
      const [inF, outF] = targetDims(model, t);
      if (!a || !b) {
        layers[l]![t] = { a: new Float32Array(rank * inF), b: new Float32Array(outF * rank) };
        continue;
      }
      any = true;
      layers[l]![t] = {
        a: readTensor(header, weights, a.name, [rank, inF], `${t} lora_A [r, in_features]`),
        b: readTensor(header, weights, b.name, [outF, rank], `${t} lora_B [out_features, r]`),
      };
    }
    if (!any) missingLayers.push(l);
  }
  // A layer with only some targets is an error (caught above per module) unless it has none at all.
  for (let l = 0; l < model.numLayers; l++) {
    if (missingLayers.includes(l)) continue;
    for (const t of targets)
      if (!found.has(`${l}.${t}.A`)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: layer ${l} has no ${t} adapter but other layers do`);
  }
  if (missingLayers.length) {
    const ltt = config.layers_to_transform;
    if (isEmpty(ltt)) throw new PeftError(`${ADAPTER_WEIGHTS_FILE}: layers ${missingLayers.join(', ')} have no adapter tensors (and layers_to_transform is not set)`);
    notes.push(`layers ${missingLayers.join(', ')} have no adapter (layers_to_transform ${JSON.stringify(ltt)}): they get zero A and B`);
  }

  // rsLoRA: scale = lora_alpha / sqrt(r). Our scale is alpha / r, so alpha = lora_alpha * sqrt(r).
  const alpha = useRslora ? loraAlpha * Math.sqrt(rank) : loraAlpha;
  if (useRslora) notes.push(`use_rslora: scale lora_alpha/sqrt(r) = ${loraAlpha}/sqrt(${rank}) = ${alpha / rank}, kept as alpha ${alpha} (alpha/r)`);
  const base = config.base_model_name_or_path;
  return {
    adapter: { rank, alpha, targets, layers },
    baseModel: typeof base === 'string' && base !== '' ? base : null,
    config,
    notes,
  };
}

export function safetensorsHeaderOf(file: string, bytes: Uint8Array) {
  if (bytes.byteLength < 8) throw new SafetensorsError(`${file}: ${bytes.byteLength} bytes is too short to be a safetensors file`);
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (len <= 0 || 8 + len > bytes.byteLength) throw new SafetensorsError(`${file}: header length ${len} does not fit the ${bytes.byteLength}-byte file`);
  return parseSafetensorsHeader(file, new TextDecoder().decode(bytes.subarray(8, 8 + len)), bytes.byteLength);
}

const DTYPE_OF: Record<SafetensorsDType, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** One tensor of an in-memory safetensors file, widened to f32, shape checked. */
export function readTensor(header: ReturnType<typeof safetensorsHeaderOf>, bytes: Uint8Array, name: string, shape: number[], what = 'tensor'): Float32Array {
  const e = header.tensors.get(name);
  if (!e) throw new PeftError(`${header.file}: no tensor "${name}"`);
  if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
    throw new PeftError(`${header.file}: "${name}" has shape [${e.shape.join(', ')}], but ${what} must be [${shape.join(', ')}] for this model and adapter`);
  const n = shape.reduce((a, b) => a * b, 1);
  // Copy out: the slice is aligned, whatever the offset in the file.
  const raw = bytes.slice(e.begin, e.end);
  return decode(raw.buffer, n, DTYPE_OF[e.dtype]) as Float32Array;
}

// ---------------------------------------------------------------------------------------------
// Two-stage adapters (SFT, then DPO)
//
// combineAdapters(first, second) returns ONE adapter of rank R = r1 + r2 whose update is the sum
// of both: with s_i = alpha_i / r_i,
//
//   A = [ A1 ; (s2/s)·A2 ]   (rows stacked: [R, in])     B = [ B1 | B2 ]   (columns: [out, R])
//   s = s1, alpha = s1·R  =>  s·B·A = s1·B1·A1 + s·B2·(s2/s)·A2 = s1·B1·A1 + s2·B2·A2.
//
// Exact in real arithmetic; in f32 the only rounding is (s2/s1)·A2, which is exact when s2/s1 is
// a power of two (e.g. both stages with alpha = 2r: no rounding at all). A target that only one
// adapter has gets zero rows/columns from the other.
//
// Our trainer does NOT need this for SFT→DPO: the DPO stage continues training the SFT adapter
// itself (initialised from it, reference log-probs precomputed with it), so the DPO adapter already
// is SFT+DPO and exports as it is. combineAdapters is for stacking independently trained adapters
// (e.g. an imported SFT adapter plus a DPO adapter trained on a model with it merged in).

export function combineAdapters(first: HostAdapter, second: HostAdapter): HostAdapter {
  if (first.layers.length !== second.layers.length)
    throw new PeftError(`combine: the adapters have ${first.layers.length} and ${second.layers.length} layers`);
  const r1 = first.rank;
  const r2 = second.rank;
  const R = r1 + r2;
  const s1 = adapterScale(first);
  const s2 = adapterScale(second);
  const ratio = s2 / s1;
  const targets = LORA_TARGETS.filter((t) => first.targets.includes(t) || second.targets.includes(t));
  const layers = first.layers.map((l1, l) => {
    const l2 = second.layers[l]!;
    const out: HostAdapter['layers'][number] = {};
    for (const t of targets) {
      const m1 = l1[t];
      const m2 = l2[t];
      const inF = m1 ? m1.a.length / r1 : m2!.a.length / r2;
      const outF = m1 ? m1.b.length / r1 : m2!.b.length / r2;
      if (m1 && m2 && (m2.a.length / r2 !== inF || m2.b.length / r2 !== outF))
        throw new PeftError(`combine: layer ${l} ${t} shapes differ ([${outF}, ${inF}] vs [${m2.b.length / r2}, ${m2.a.length / r2}])`);
      const a = new Float32Array(R * inF);
      const b = new Float32Array(outF * R);
      if (m1) {
        a.set(m1.a, 0);
        for (let o = 0; o < outF; o++) for (let k = 0; k < r1; k++) b[o * R + k] = m1.b[o * r1 + k]!;
      }
      if (m2) {
        for (let i = 0; i < r2 * inF; i++) a[r1 * inF + i] = ratio * m2.a[i]!;
        for (let o = 0; o < outF; o++) for (let k = 0; k < r2; k++) b[o * R + r1 + k] = m2.b[o * r2 + k]!;
      }
      out[t] = { a, b };
    }
    return out;
  });
  return { rank: R, alpha: s1 * R, targets, layers };
}

/** ΔW = scale·B·A of one module in float64 ([out, in] row-major). */
export function deltaWeight(host: HostAdapter, layer: number, target: LoraTarget): Float64Array {
  const m = host.layers[layer]?.[target];
  if (!m) throw new PeftError(`adapter: layer ${layer} has no ${target}`);
  const r = host.rank;
  const inF = m.a.length / r;
  const outF = m.b.length / r;
  const s = adapterScale(host);
  const out = new Float64Array(outF * inF);
  for (let o = 0; o < outF; o++) {
    const row = o * inF;
    for (let k = 0; k < r; k++) {
      const bk = s * m.b[o * r + k]!;
      if (bk === 0) continue;
      const ak = k * inF;
      for (let i = 0; i < inF; i++) out[row + i] += bk * m.a[ak + i]!;
    }
  }
  return out;
}
