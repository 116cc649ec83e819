// The device's measured matmul speed (worker/speed-service.ts), once per tab: estimates of work
// before it starts (the no-API-key recipe's time) divide their FLOPs by it.
import { create } from 'zustand';
import { engine, errorMessage } from './engine';
import type { MeasuredDeviceSpeed } from './worker/speed-service';

export type DeviceSpeedState =
  | { state: 'idle' }
  | { state: 'measuring' }
  | { state: 'ready'; speed: MeasuredDeviceSpeed }
  | { state: 'error'; message: string };

interface DeviceSpeedStore {
  speed: DeviceSpeedState;
  /** Measures unless measured or measuring (again = true measures anew). */
  measure(again?: boolean): Promise<void>;
}

export const useDeviceSpeedStore = create<DeviceSpeedStore>((set, get) => ({
  speed: { state: 'idle' },
  async measure(again = false) {
    const cur = get().speed.state;
    if (cur === 'measuring' || (cur === 'ready' && !again)) return;
    set({ speed: { state: 'measuring' } });
    try {
      set({ speed: { state: 'ready', speed: await engine().measureDeviceSpeed() } });
    } catch (e) {
      set({ speed: { state: 'error', message: errorMessage(e) } });
    }
  },
}));
