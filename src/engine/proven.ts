// Kernel paths proven on this device. A feature-gated or GPU-only path (flash attention,
// split-KV decode, ...) is chosen by default only after its GPU self-test case passed on the
// same GpuContext: a driver that compiles a kernel is not yet one that computes it right.
// `runSelfTest` marks the paths of the cases that pass (SelfTestCase.proves); explicit
// `path` options still force any path (the tests do, on SwiftShader).
import type { GpuContext } from '../gpu/context';

const proven = new WeakMap<GpuContext, Set<string>>();

export function markProven(ctx: GpuContext, path: string): void {
  let set = proven.get(ctx);
  if (!set) proven.set(ctx, (set = new Set()));
  set.add(path);
}

export function isProven(ctx: GpuContext, path: string): boolean {
  return proven.get(ctx)?.has(path) ?? false;
}

/** The paths proven on this context so far (for status pages and logs). */
export function provenPaths(ctx: GpuContext): string[] {
  return [...(proven.get(ctx) ?? [])].sort();
}
