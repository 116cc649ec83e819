// LoRA adapters for a decoder model, PEFT layout: per layer and target module, A [r, in] and
// B [out, r] (f32) with W' = W + (alpha / r) · B·A. PEFT's default init: A kaiming-uniform
// (a = √5, i.e. U(±1/√in)), B = 0, so a fresh adapter leaves the model unchanged.
//
// Trainable adapters also carry their gradients and AdamW moments (zeroed), listed in `params`
// in a fixed order with PEFT names, which is what an optimizer step and a checkpoint iterate.
// `enabled = false` makes every forward run the base model (DPO reference log-probs) without
// freeing anything.
import type { CommandBatch } from '../gpu/batch';
import type { GpuContext } from '../gpu/context';
import { encode } from '../gpu/dtype';
import type { Tensor } from '../gpu/tensor';
import type { ModelConfig } from './config';
import type { LayerWeightName } from './weights';
import { seededRandom } from './rng';
import { allocateSpecs, type TensorSpec } from './specs';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The base weight each target adapts. */
export const TARGET_WEIGHT: Record<LoraTarget, LayerWeightName> = {
  q_proj: 'q',
  k_proj: 'k',
  v_proj: 'v',
  o_proj: 'o',
  gate_proj: 'gate',
  up_proj: 'up',
  down_proj: 'down',
};

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Default: all seven projections. */
  targets?: readonly LoraTarget[];
}

/** One adapted Linear layer. Gradients are null for an inference-only adapter. */
export interface LoraModule {
  a: Tensor; // [r, in]
  b: Tensor; // [out, r]
  dA: Tensor | null;
  dB: Tensor | null;
}

/** A tensor the optimizer updates, with its gradient and AdamW moments (all f32, same size). */
export interface TrainableParam {
  name: string;
  value: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
}

export interface LoraAdapters {
  config: Required<LoraConfig>;
  /** alpha / rank. */
  scale: number;
  /** When false, forwards and generation run the base model; nothing is freed. */
  enabled: boolean;
  layers: Partial<Record<LoraTarget, LoraModule>>[];
  /** Trainable tensors (A then B of each module, layer by layer); empty for an inference-only adapter. */
  params: TrainableParam[];
  release(): void;
}

export function resolveLoraConfig(c: LoraConfig): Required<LoraConfig> {
  const targets = c.targets ?? LORA_TARGETS;
  if (!Number.isInteger(c.rank) || c.rank < 1) throw new Error(`lora: rank ${c.rank} must be a positive integer`);
  if (!(c.alpha > 0)) throw new Error(`lora: alpha ${c.alpha} must be positive`);
  for (const t of targets) if (!LORA_TARGETS.includes(t)) throw new Error(`lora: unknown target "${t}" (expected ${LORA_TARGETS.join(', ')})`);
  if (new Set(targets).size !== targets.length) throw new Error(`lora: duplicate targets in [${targets.join(', ')}]`);
  return { rank: c.rank, alpha: c.alpha, targets: [...targets] };
}

/** [in, out] features of a target's Linear layer. */
export function targetDims(c: ModelConfig, t: LoraTarget): [number, number] {
  const H = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const dims: Record<LoraTarget, [number, number]> = {
    q_proj: [H, q],
    k_proj: [H, kv],
    v_proj: [H, kv],
    o_proj: [q, H],
    gate_proj: [H, I],
    up_proj: [H, I],
    down_proj: [I, H],
  };
  return dims[t];
}

/** PEFT tensor name, e.g. base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight. */
export function peftTensorName(layer: number, target: LoraTarget, which: 'A' | 'B'): string {
  const block = target === 'gate_proj' || target === 'up_proj' || target === 'down_proj' ? 'mlp' : 'self_attn';
  return `base_model.model.model.layers.${layer}.${block}.${target}.lora_${which}.weight`;
}

const key = (l: number, t: LoraTarget, w: 'A' | 'B') => `layers.${l}.${t}.lora_${w}`;

/** What an adapter allocates: values, and for a trainable one gradients and two moments. */
export function loraSpecs(
  model: ModelConfig,
  lora: LoraConfig,
  trainable: boolean,
): { adapters: TensorSpec[]; grads: TensorSpec[]; moments: TensorSpec[] } {
  const { rank: r, targets } = resolveLoraConfig(lora);
  const adapters: TensorSpec[] = [];
  for (let l = 0; l < model.numLayers; l++)
    for (const t of targets) {
      const [inF, outF] = targetDims(model, t);
      adapters.push({ name: key(l, t, 'A'), shape: [r, inF], dtype: 'f32' });
      adapters.push({ name: key(l, t, 'B'), shape: [outF, r], dtype: 'f32' });
    }
  if (!trainable) return { adapters, grads: [], moments: [] };
  const grads = adapters.map((s) => ({ ...s, name: `${s.name}.grad` }));
  const moments = adapters.flatMap((s) => [
    { ...s, name: `${s.name}.m` },
    { ...s, name: `${s.name}.v` },
  ]);
  return { adapters, grads, moments };
}

export interface CreateLoraOptions {
  /** Seed of A's initialisation (default 0). */
  seed?: number;
  /** Allocate gradients and AdamW moments (default true). */
  trainable?: boolean;
}

/** Allocate adapters with PEFT's initialisation (A kaiming-uniform from `seed`, B = 0), grads and moments zeroed. */
export function createLoraAdapters(ctx: GpuContext, model: ModelConfig, lora: LoraConfig, options: CreateLoraOptions = {}): LoraAdapters {
  const config = resolveLoraConfig(lora);
  const trainable = options.trainable ?? true;
  const specs = loraSpecs(model, config, trainable);
  const all = [...specs.adapters, ...specs.grads, ...specs.moments];
  const t = allocateSpecs<string>(ctx, all, 'lora ');
  const layers: LoraAdapters['layers'] = [];
  const params: TrainableParam[] = [];
  for (let l = 0; l < model.numLayers; l++) {
    const layer: Partial<Record<LoraTarget, LoraModule>> = {};
    for (const target of config.targets) {
      const a = key(l, target, 'A');
      const b = key(l, target, 'B');
      layer[target] = { a: t[a]!, b: t[b]!, dA: t[`${a}.grad`] ?? null, dB: t[`${b}.grad`] ?? null };
      if (trainable)
        for (const [k, which] of [
          [a, 'A'],
          [b, 'B'],
        ] as const)
          params.push({ name: peftTensorName(l, target, which), value: t[k]!, grad: t[`${k}.grad`]!, m: t[`${k}.m`]!, v: t[`${k}.v`]! });
    }
    layers.push(layer);
  }
  const adapters: LoraAdapters = {
    config,
    scale: config.alpha / config.rank,
    enabled: true,
    layers,
    params,
    release() {
      for (const x of Object.values(t)) x.release();
    },
  };
  // B, gradients and moments start at zero; A is drawn on the host.
  const batch = ctx.batch('lora init');
  for (const s of all) if (!s.name.endsWith('lora_A')) batch.clear(t[s.name]!);
  batch.submit();
  const next = seededRandom(options.seed ?? 0);
  for (let l = 0; l < model.numLayers; l++)
    for (const target of config.targets) {
      const m = layers[l]![target]!;
      const bound = 1 / Math.sqrt(m.a.shape[1]!);
      const values = new Float32Array(m.a.size);
      for (let i = 0; i < values.length; i++) values[i] = (2 * next() - 1) * bound;
      ctx.writeBytes(m.a, encode(values, 'f32'));
    }
  return adapters;
}

function moduleOf(adapters: LoraAdapters, layer: number, target: LoraTarget): LoraModule {
  const m = adapters.layers[layer]?.[target];
  if (!m) throw new Error(`lora: no adapter for layer ${layer} ${target} (targets: ${adapters.config.targets.join(', ')})`);
  return m;
}

/** Set one module's A [r, in] and B [out, r] from host values (e.g. an imported PEFT adapter). */
export function setLoraWeights(ctx: GpuContext, adapters: LoraAdapters, layer: number, target: LoraTarget, a: ArrayLike<number>, b: ArrayLike<number>): void {
  const m = moduleOf(adapters, layer, target);
  for (const [t, v, w] of [
    [m.a, a, 'A'],
    [m.b, b, 'B'],
  ] as const)
    if (v.length !== t.size) throw new Error(`lora: layer ${layer} ${target} lora_${w} needs ${t.size} values [${t.shape.join(', ')}], got ${v.length}`);
  ctx.writeBytes(m.a, encode(a, 'f32'));
  ctx.writeBytes(m.b, encode(b, 'f32'));
}

/** Read one module's A and B back to the host (for export). */
export async function readLoraWeights(ctx: GpuContext, adapters: LoraAdapters, layer: number, target: LoraTarget): Promise<{ a: Float32Array; b: Float32Array }> {
  const m = moduleOf(adapters, layer, target);
  return { a: await ctx.readF32(m.a), b: await ctx.readF32(m.b) };
}

/** Zero every gradient (start of a gradient-accumulation window). */
export function zeroLoraGrads(batch: CommandBatch, adapters: LoraAdapters): void {
  for (const p of adapters.params) batch.clear(p.grad);
}
