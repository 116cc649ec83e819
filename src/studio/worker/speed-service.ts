// The device's matmul speed (model/speed.ts), measured here where the GPU is, for estimates shown
// before work starts (the no-API-key recipe's time).
import { measureDeviceSpeed, type DeviceSpeed } from '../../model/speed';
import { gpuContext } from './session';

export interface MeasuredDeviceSpeed extends DeviceSpeed {
  /** The adapter it was measured on, for people ("SwiftShader Device (Subzero)", "Apple M2"). */
  adapter: string;
  isFallback: boolean;
}

export const speedService = {
  async measureDeviceSpeed(): Promise<MeasuredDeviceSpeed> {
    const ctx = await gpuContext();
    const speed = await measureDeviceSpeed(ctx);
    const a = ctx.adapter;
    return { ...speed, adapter: a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter', isFallback: a.isFallback };
  },
};
