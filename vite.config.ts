import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

// Pyodide (Python for the code verifier's sandbox, src/data/sandbox-browser.ts) is served as-is
// at /pyodide/: its loader fetches pyodide.asm.wasm, the stdlib zip and the lock file by URL, so
// it cannot be bundled. Served from node_modules in dev, copied into the build otherwise.
const PYODIDE_DIR = resolve('node_modules/pyodide');
const PYODIDE_FILES = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'];
const PYODIDE_TYPES: Record<string, string> = { mjs: 'text/javascript', wasm: 'application/wasm', zip: 'application/zip', json: 'application/json' };

function servePyodide(): Plugin {
  let outDir = '';
  return {
    name: 'fuse-studio-pyodide',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    configureServer(server) {
      server.middlewares.use('/pyodide', (req, res, next) => {
        const name = (req.url ?? '').replace(/^\/+|\?.*$/g, '');
        if (!PYODIDE_FILES.includes(name)) return next();
        readFile(join(PYODIDE_DIR, name)).then((bytes) => {
          res.setHeader('Content-Type', PYODIDE_TYPES[name.split('.').pop()!] ?? 'application/octet-stream');
          res.end(bytes);
        }, next);
      });
    },
    async writeBundle() {
      await mkdir(join(outDir, 'pyodide'), { recursive: true });
      await Promise.all(PYODIDE_FILES.map((f) => copyFile(join(PYODIDE_DIR, f), join(outDir, 'pyodide', f))));
    },
  };
}

// The studio: a React app whose heavy work (training, generation) runs in ES-module Web Workers.
// WGSL kernels are imported as text with `?raw` (see docs/KERNELS.md).
export default defineConfig({
  plugins: [react(), servePyodide()],
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
  build: {
    outDir: 'dist/studio',
    emptyOutDir: true,
    // Every browser with WebGPU supports ES2022 (top-level await, class fields).
    target: 'es2022',
    sourcemap: true,
  },
});
