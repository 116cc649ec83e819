// Test weights for quantized kernels: normal draws whose groups of QUANT_GROUP elements are scaled
// by 10^U(-2, 2), so a kernel that reads a neighbouring group's scale fails by orders of magnitude.
import { QUANT_GROUP } from '../../gpu/quant';
import { randn } from './random';

export function groupedWeights(n: number, next: () => number): Float64Array {
  const w = randn(n, next);
  for (let g = 0; g * QUANT_GROUP < n; g++) {
    const s = 10 ** (4 * next() - 2);
    for (let i = g * QUANT_GROUP; i < Math.min(n, (g + 1) * QUANT_GROUP); i++) w[i]! *= s;
  }
  return w;
}
