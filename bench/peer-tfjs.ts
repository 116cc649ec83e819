// The peer: TensorFlow.js with its WebGPU backend, running on the very GPUDevice our engine
// uses (same Dawn instance, same adapter, same queue), so both sides share one GPU and one
// timing method.
//
// How: tfjs-backend-webgpu's own factory (registered on import, only when navigator.gpu exists)
// would request a second adapter and device. Instead we construct its exported WebGPUBackend
// with our device and register that instance under the name "webgpu" (its kernels are
// registered for that backend name). The constructor only insists that navigator.gpu is
// truthy, so for that call we expose a stand-in GPU object when Node has none (Node 20 has no
// navigator at all; Node 21+ has one without .gpu) and restore navigator afterwards.

import { createRequire } from 'node:module';
import type * as TfCore from '@tensorflow/tfjs-core';
import type { GpuContext } from '../src/gpu/context';

export interface TfjsPeer {
  /** "tfjs-webgpu <version>" */
  name: string;
  tf: typeof TfCore;
  /** Ends TF.js's open compute pass and submits its pending commands (no waiting). */
  submit(): void;
  /** submit(), then resolves when the shared queue has finished all submitted work. */
  sync(): Promise<void>;
  /** Removes the backend (frees TF.js's buffers; the shared device stays alive). */
  dispose(): void;
}

// The parts of WebGPUBackend we drive directly (public in its JS, some private in its typings).
interface BackendInternals {
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** A GPU object for navigator.gpu that only exists to satisfy TF.js's "is WebGPU supported" check. */
function standInGpu(): GPU {
  return {
    requestAdapter: () =>
      Promise.reject(new Error('bench/peer-tfjs: TF.js must use the shared device, not request its own adapter')),
    getPreferredCanvasFormat: () => 'rgba8unorm',
    wgslLanguageFeatures: new Set<string>(),
  } as unknown as GPU;
}

/** Runs `f` with navigator.gpu defined, restoring globalThis.navigator exactly afterwards. */
function withNavigatorGpu<T>(f: () => T): T {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return f();
  const own = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  if (g.navigator) {
    // Node 21+: a Navigator object without gpu.
    Object.defineProperty(g.navigator, 'gpu', { value: standInGpu(), configurable: true });
    try {
      return f();
    } finally {
      delete g.navigator.gpu;
    }
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: standInGpu() }, configurable: true, writable: true });
  try {
    return f();
  } finally {
    if (own) Object.defineProperty(globalThis, 'navigator', own);
    else delete g.navigator;
  }
}

export async function createTfjsPeer(gpu: GpuContext): Promise<TfjsPeer> {
  const tf = await import('@tensorflow/tfjs-core');
  // The gradient functions (tf.grads, tf.variableGrads, optimizers) are a separate registration.
  await import('@tensorflow/tfjs-core/dist/register_all_gradients');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const require = createRequire(import.meta.url);
  const version = (require('@tensorflow/tfjs-backend-webgpu/package.json') as { version: string }).version;

  // tfjs-backend-webgpu reads only vendor and architecture (to tune for Intel GPUs).
  const info = {
    vendor: gpu.adapter.vendor,
    architecture: gpu.adapter.architecture,
    device: gpu.adapter.device,
    description: gpu.adapter.description,
  } as GPUAdapterInfo;
  const backend = withNavigatorGpu(() => new WebGPUBackend(gpu.device, info));
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend, 100);
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not initialise its WebGPU backend on the shared device');
  // Never hand small ops to TF.js's CPU path: every op of the peer runs on the GPU.
  tf.env().set('WEBGPU_CPU_FORWARD', false);

  const internals = backend as unknown as BackendInternals;
  const submit = () => {
    internals.endComputePassEncoder();
    if (internals.commandEncoder) internals.submitQueue();
  };
  return {
    name: `tfjs-webgpu ${version}`,
    tf,
    submit,
    async sync() {
      submit();
      await gpu.device.queue.onSubmittedWorkDone();
    },
    dispose() {
      if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    },
  };
}
