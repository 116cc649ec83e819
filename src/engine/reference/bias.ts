// float64 references for a linear layer's bias.
export function biasForwardRef(y: Float64Array, b: Float64Array): Float64Array {
  return y.map((v, i) => v + b[i % b.length]!);
}

export function biasBackwardRef(dy: Float64Array, cols: number): Float64Array {
  const db = new Float64Array(cols);
  for (let i = 0; i < dy.length; i++) db[i % cols]! += dy[i]!;
  return db;
}
