import { describe, expect, it } from 'vitest';
import { checkHubEndpoint, deviceLimits } from './modelStore';

describe('Model page settings', () => {
  it('takes a Hub address as an http(s) URL without its trailing slash, and says what is wrong otherwise', () => {
    expect(checkHubEndpoint(' http://192.168.1.10:8080/ ')).toEqual({ endpoint: 'http://192.168.1.10:8080' });
    expect(checkHubEndpoint('https://hf-mirror.com')).toEqual({ endpoint: 'https://hf-mirror.com' });
    expect(checkHubEndpoint('hf-mirror.com')).toEqual({ error: expect.stringMatching(/^"hf-mirror.com" is not a URL: give the Hub's address/) });
    expect(checkHubEndpoint('ftp://x')).toEqual({ error: 'The Hub address must start with http:// or https://, got ftp:' });
  });

  it('checks plans against the adapter limits (WebGPU defaults until known) and the stated memory', () => {
    expect(deviceLimits(null, '')).toEqual({ maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20, memoryBytes: null });
    const adapter = { vendor: '', architecture: '', device: '', description: '', features: [], isFallback: false, limits: { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 31 } };
    expect(deviceLimits(adapter, '6.5')).toEqual({ maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 31, memoryBytes: 6.5 * 2 ** 30 });
    expect(deviceLimits(adapter, '0').memoryBytes).toBeNull();
    expect(deviceLimits(adapter, 'lots').memoryBytes).toBeNull();
  });
});
