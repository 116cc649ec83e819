import { describe, expect, it } from 'vitest';
import { explainLoadError, isNetworkFailure } from './loadErrors';

describe('explainLoadError', () => {
  const gated = 'https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/resolve/main/config.json: Failed to fetch';

  it('turns a bare "Failed to fetch" from the Hub into the network and the token, naming the host and repo', () => {
    const m = explainLoadError(gated, { kind: 'remote', spec: 'meta-llama/Llama-3.2-1B-Instruct' });
    expect(m).toMatch(/^Could not reach huggingface\.co to load “meta-llama\/Llama-3\.2-1B-Instruct”/);
    expect(m).toContain('offline');
    expect(m).toContain('paste an access token');
    expect(m).toContain('(https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/resolve/main/config.json: Failed to fetch)');
  });

  it('with a token sent, says to check the token’s access instead of asking for one', () => {
    const m = explainLoadError(gated, { kind: 'remote', spec: 'meta-llama/Llama-3.2-1B-Instruct', token: true });
    expect(m).toContain('check that your token has access');
    expect(m).not.toContain('paste an access token');
  });

  it('names the host of the failing URL (a mirror, a local server)', () => {
    const m = explainLoadError('http://127.0.0.1:9/tiny/config.json: Failed to fetch', { kind: 'remote', spec: 'http://127.0.0.1:9/tiny/' });
    expect(m).toMatch(/^Could not reach 127\.0\.0\.1:9 /);
    expect(m).toContain('check that it is running and sends CORS headers');
  });

  it('keeps specific messages (HTTP status, bad files) and local loads as they are', () => {
    const notFound = 'http://127.0.0.1:5/x/config.json: not found (404). Check the repo id, revision and file name.';
    expect(explainLoadError(notFound, { kind: 'remote', spec: 'http://127.0.0.1:5/x/' })).toBe(notFound);
    expect(explainLoadError('Failed to fetch', { kind: 'directory' })).toBe('Failed to fetch');
  });

  it('says a cancel plainly', () => {
    expect(explainLoadError('http://x/model.safetensors: cancelled after 12 bytes (kept for resume)', { kind: 'remote', spec: 'http://x/' })).toBe('Loading was cancelled.');
  });

  it('knows the browsers’ words for a request with no answer', () => {
    for (const m of ['Failed to fetch', 'NetworkError when attempting to fetch resource.', 'Load failed', 'fetch failed']) expect(isNetworkFailure(m)).toBe(true);
    expect(isNetworkFailure('HTTP 500')).toBe(false);
  });
});
