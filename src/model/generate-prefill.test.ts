import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { testContext } from '../engine/testing/gpu';
import { generateBatch, PREFILL_CHUNK } from './generate';
import { createDecoderModel, type DecoderModel } from './decoder';
import { randomHostWeights, seededRandom, tinyConfig, uploadHostWeights } from './random';
import { releaseWeights, type ModelWeights } from './weights';

// A cancellable generation (one given a signal) prefills a prompt longer than PREFILL_CHUNK in
// chunks, waiting for the GPU after each: the logits equal the whole prefill's (same math, rounding
// aside), and a cancel during the prefill stops it after the chunk in flight, with no token drawn.
// This is what lets `fuse-studio serve` drop an abandoned long prompt within one chunk.

let ctx: GpuContext;
let model: DecoderModel;
let weights: ModelWeights;
const config = tinyConfig({ hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 40, vocabSize: 97 });

beforeAll(async () => {
  ctx = await testContext();
  weights = uploadHostWeights(ctx, randomHostWeights(config, 'f32', 5));
  model = createDecoderModel(ctx, weights);
});
afterAll(() => {
  model?.release();
  if (weights) releaseWeights(weights);
});

const next = seededRandom(9);
const prompt = (len: number) => Array.from({ length: len }, () => Math.floor(next() * config.vocabSize));
const LONG = prompt(2 * PREFILL_CHUNK + 37);
const SHORT = prompt(5);

/** Sizes of the multi-row or multi-token appends (their ids uploads), in order. */
function watchAppends(onAppend?: (tokens: number) => void): { sizes: number[]; restore(): void } {
  const write = ctx.writeBytes.bind(ctx);
  const sizes: number[] = [];
  ctx.writeBytes = (t: Tensor, bytes: Uint8Array<ArrayBuffer>, byteOffset?: number) => {
    if (t.label === 'decode ids') {
      sizes.push(bytes.length / 4);
      onAppend?.(bytes.length / 4);
    }
    write(t, bytes, byteOffset);
  };
  return { sizes, restore: () => (ctx.writeBytes = write) };
}

async function logitsOf(signal: AbortSignal | undefined): Promise<{ logits: Float32Array[][]; sizes: number[] }> {
  const logits: Float32Array[][] = [[], []];
  const w = watchAppends();
  try {
    await generateBatch(model, {
      prompts: [LONG, SHORT],
      maxNewTokens: 3,
      sampling: { temperature: 0 },
      ...(signal ? { signal } : {}),
      onLogits: (b, l) => logits[b]!.push(Float32Array.from(l)),
    });
  } finally {
    w.restore();
  }
  return { logits, sizes: w.sizes };
}

describe('a cancellable prefill', () => {
  it('appends a long prompt in chunks and computes the same logits as one whole prefill', async () => {
    const whole = await logitsOf(undefined);
    const chunked = await logitsOf(new AbortController().signal);
    const T = LONG.length;
    // Two rows: the prefill uploads 2·Tp ids at once, or 2·chunk per chunk; then one id per row per step.
    expect(whole.sizes[0]).toBe(2 * T);
    expect(chunked.sizes.slice(0, 3)).toEqual([2 * PREFILL_CHUNK, 2 * PREFILL_CHUNK, 2 * (T - 2 * PREFILL_CHUNK)]);
    let worst = 0;
    let scale = 0;
    for (let b = 0; b < 2; b++)
      for (let step = 0; step < 3; step++) {
        const a = whole.logits[b]![step]!;
        const c = chunked.logits[b]![step]!;
        for (let i = 0; i < a.length; i++) {
          worst = Math.max(worst, Math.abs(a[i]! - c[i]!));
          scale = Math.max(scale, Math.abs(a[i]!));
        }
      }
    expect(worst / scale).toBeLessThan(1e-4);
  });

  it('stops after the chunk in flight when cancelled during the prefill, drawing no token', async () => {
    const stop = new AbortController();
    const w = watchAppends(() => stop.abort()); // cancel as the first chunk is submitted
    let results;
    try {
      results = await generateBatch(model, { prompts: [LONG], maxNewTokens: 4, sampling: { temperature: 0 }, signal: stop.signal });
    } finally {
      w.restore();
    }
    expect(w.sizes).toEqual([PREFILL_CHUNK]);
    expect(results[0]).toEqual({ ids: [], finishReason: 'aborted' });
  });
});
