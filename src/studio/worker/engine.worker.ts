// The engine worker: the GPU device, the model, training and generation live here, so the page
// never freezes while kernels are encoded, weights uploaded or tokens decoded.
import * as Comlink from 'comlink';
import { engineApi } from './engine-api';

Comlink.expose(engineApi);
