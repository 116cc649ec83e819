// Workgroup max and sum for attention_decode.wgsl on adapters with `subgroups` (the module is
// compiled with `enable subgroups;`): one subgroupMax / subgroupAdd, then each subgroup's
// elected invocation leaves its result in t_red (the others the identity) and every invocation
// folds t_red in index order: two barriers instead of log2(WD) + 2, deterministic, and correct
// whatever the subgroup size and however the invocations are grouped into subgroups.

fn reduce_max(x: f32, lid: u32) -> f32 {
  let r = subgroupMax(x);
  workgroupBarrier();
  t_red[lid] = select(NEG, r, subgroupElect());
  workgroupBarrier();
  var m = NEG;
  for (var i = 0u; i < WD; i++) {
    m = max(m, t_red[i]);
  }
  return m;
}

fn reduce_sum(x: f32, lid: u32) -> f32 {
  let r = subgroupAdd(x);
  workgroupBarrier();
  t_red[lid] = select(0.0, r, subgroupElect());
  workgroupBarrier();
  var s = 0.0;
  for (var i = 0u; i < WD; i++) {
    s += t_red[i];
  }
  return s;
}
