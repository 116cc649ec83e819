// The device's measured matmul speed (worker/speed-service.ts): estimates of work before it starts
// (the no-API-key recipe's time) divide their FLOPs by it. Measured once and kept in this
// browser's localStorage with the adapter and the date, so a visit or a reload does not put a
// probe on the GPU beside the user's work; "Measure again" replaces it.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { engine, errorMessage } from './engine';
import type { MeasuredDeviceSpeed } from './worker/speed-service';

export type DeviceSpeedState =
  | { state: 'idle' }
  | { state: 'measuring' }
  | { state: 'ready'; speed: MeasuredDeviceSpeed; measuredAt: string }
  | { state: 'error'; message: string };

interface DeviceSpeedStore {
  speed: DeviceSpeedState;
  /** Measures unless measured (kept) or measuring; again = true measures anew. */
  measure(again?: boolean): Promise<void>;
}

export const useDeviceSpeedStore = create<DeviceSpeedStore>()(
  persist(
    (set, get) => ({
      speed: { state: 'idle' },
      async measure(again = false) {
        const cur = get().speed.state;
        if (cur === 'measuring' || (cur === 'ready' && !again)) return;
        set({ speed: { state: 'measuring' } });
        try {
          set({ speed: { state: 'ready', speed: await engine().measureDeviceSpeed(), measuredAt: new Date().toISOString() } });
        } catch (e) {
          set({ speed: { state: 'error', message: errorMessage(e) } });
        }
      },
    }),
    // Only a finished measurement is kept: one cut short by a reload is measured again.
    { name: 'fuse-studio-device-speed', partialize: (s) => ({ speed: s.speed.state === 'ready' ? s.speed : { state: 'idle' as const } }) },
  ),
);
