import { relative } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

/** The bundle's source files, relative to the project root, in which the bundle is built from them. */
export const CLI_INPUTS_FILE = 'inputs.json';

// bin/fuse-studio.js rebuilds the bundle when one of these files is newer than it (or gone), so a
// checkout whose sources changed after `npm install` (git pull, an edit) never runs stale code.
function recordInputs(): Plugin {
  const root = process.cwd();
  return {
    name: 'fuse-studio-cli-inputs',
    generateBundle(_options, bundle) {
      const files = new Set<string>(['vite.cli.config.ts', 'package.json']);
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        for (const id of Object.keys(chunk.modules)) {
          const file = relative(root, id.replace(/[?#].*$/, ''));
          if (!file.startsWith('..') && !file.startsWith('\0') && !file.includes('node_modules')) files.add(file.split('\\').join('/'));
        }
      }
      this.emitFile({ type: 'asset', fileName: CLI_INPUTS_FILE, source: JSON.stringify([...files].sort(), null, 1) });
    },
  };
}

// The `fuse-studio` CLI: src/cli/main.ts bundled for Node into dist/cli/main.js (run by
// bin/fuse-studio.js; `npm install` builds it through the `prepare` script). Dependencies stay
// external (the `webgpu` package is a native addon); WGSL `?raw` imports are inlined as strings.
export default defineConfig({
  plugins: [recordInputs()],
  publicDir: false,
  build: {
    ssr: 'src/cli/main.ts',
    outDir: 'dist/cli',
    emptyOutDir: true,
    target: 'node20',
    sourcemap: true,
  },
});
