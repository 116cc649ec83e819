// fuse-studio serve: the model (and an optional PEFT adapter) behind an OpenAI-compatible HTTP API
// (GET /v1/models, POST /v1/chat/completions, streaming included) and vLLM's reward-model route
// POST /pooling (the mean per-token log-probability of a response: a likelihood reward); see src/serve/.
import { DEFAULT_SERVE_PORT } from '../../data/sources';
import { startServer } from '../../serve/model-backend';
import type { SERVE_OPTIONS } from '../commands';
import { parseQuant } from '../quant-option';
import { intOption, UsageError, type Parsed } from './args';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export async function run({ values: v }: Parsed<typeof SERVE_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('serve: --model DIR|URL is required');
  const port = intOption('port', v.port) ?? DEFAULT_SERVE_PORT;
  if (port < 0 || port > 65535) throw new UsageError(`--port: ${port} is not a port`);
  const maxTokens = intOption('max-tokens', v['max-tokens']);
  if (maxTokens !== undefined && maxTokens < 1) throw new UsageError(`--max-tokens: must be ≥ 1, got ${maxTokens}`);
  const maxContext = intOption('max-context', v['max-context']);
  if (maxContext !== undefined && maxContext < 2) throw new UsageError(`--max-context: must be ≥ 2 (prompt + completion tokens), got ${maxContext}`);
  const host = v.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) console.error(`serve: warning: listening on ${host}, not loopback; the API has no authentication`);

  const server = await startServer({
    model: v.model,
    adapter: v.adapter,
    quant: parseQuant(v.quant),
    port,
    host,
    modelName: v['model-name'],
    dateString: v['date-string'],
    defaultMaxTokens: maxTokens,
    maxContext,
  });
  console.log(`serving "${server.modelId}" at ${server.baseURL} (OpenAI-compatible; reward model: POST ${server.baseURL.replace(/\/v1$/, '')}/pooling; Ctrl-C stops)`);
  // SIGTERM or SIGINT: stop accepting, abort what runs (between two tokens), release the GPU, exit 0.
  // The handlers go after the first signal, so a second one ends the process at once.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      console.error(`serve: ${signal}, shutting down (send it again to force)`);
      void server.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
