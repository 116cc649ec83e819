// Float64 reference of shaders/sampling.wgsl: per-row argmax, the lowest index among ties
// (torch.argmax, and src/model/sampling.ts `argmax`, which the host sampler uses); -1 for a row
// holding NaN or +Inf (the GPU's "fall back to the host sampler" signal); 0 for a row of -Inf.

export function argmaxRowsRef(logits: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bad = false;
    for (let c = 0; c < cols; c++) {
      const x = logits[r * cols + c]!;
      if (Number.isNaN(x) || x === Infinity) bad = true;
      else if (x > logits[r * cols + best]! || Number.isNaN(logits[r * cols + best]!)) best = c;
    }
    out[r] = bad ? -1 : best;
  }
  return out;
}
