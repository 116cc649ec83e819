// Everything the page can ask of the engine worker: one object whose methods comlink exposes.
// Each service is its own module; callbacks passed in from the page arrive as comlink proxies.

import { listAdapters, removeAdapter } from './adapter-store';
import { afterGenerations, chatService } from './chat-service';
import { evalService } from './eval-service';
import { exportService } from './export-service';
import { localSourceService } from './local-source-service';
import { modelService } from './model-service';
import { rewardService } from './reward-service';
import { requireSession } from './session';
import { speedService } from './speed-service';
import { tokenService } from './token-service';
import { trainService } from './train-service';

export const engineApi = {
  ...modelService,
  ...chatService,
  ...trainService,
  ...exportService,
  ...rewardService,
  ...localSourceService,
  ...tokenService,
  ...evalService,
  ...speedService,

  /** Adapters stored for the loaded model. */
  listAdapters() {
    return listAdapters(requireSession().modelKey);
  },

  async removeAdapter(name: string) {
    const s = requireSession();
    await afterGenerations(async () => {
      s.adapters.get(name)?.gpu.release();
      s.adapters.delete(name);
    });
    await removeAdapter(s.modelKey, name);
  },
};

export type EngineApi = typeof engineApi;
