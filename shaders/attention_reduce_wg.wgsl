// Workgroup max and sum for attention_decode.wgsl (adapters without `subgroups`): a tree in
// workgroup memory, log2(WD) barriers. Every invocation gets the result. Deterministic.

fn reduce_max(x: f32, lid: u32) -> f32 {
  workgroupBarrier();
  t_red[lid] = x;
  for (var s = WD / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      t_red[lid] = max(t_red[lid], t_red[lid + s]);
    }
  }
  workgroupBarrier();
  return t_red[0];
}

fn reduce_sum(x: f32, lid: u32) -> f32 {
  workgroupBarrier();
  t_red[lid] = x;
  for (var s = WD / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      t_red[lid] = t_red[lid] + t_red[lid + s];
    }
  }
  workgroupBarrier();
  return t_red[0];
}
