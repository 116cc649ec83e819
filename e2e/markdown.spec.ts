import { mkdir } from 'node:fs/promises';
import { expect, test } from '@playwright/test';
import { MOCK_MODEL, startOpenAIMock, type MockOpenAI } from './openai-mock';

// Model output is untrusted: a response collected from a source (a local OpenAI-compatible
// server here) that carries HTML and a javascript: link must show as text on the Data page and
// run nothing, while ordinary Markdown (code, tables, math) still renders.

const EVIL = [
  'Here is my answer.',
  '',
  '<img src=x onerror="window.__xss=1">',
  '',
  '<script>window.__xss=2</script>',
  '',
  'A [x](javascript:window.__xss=3) link and a [safe one](https://example.com/docs).',
  '',
  '```python',
  'print("hello")',
  '```',
  '',
  '| a | b |',
  '|---|---|',
  '| 1 | 2 |',
  '',
  'Math: $$x^2 + 1$$ and \\(y_1\\); prices stay text: $5 and $10.',
].join('\n');

let mock: MockOpenAI;

test.beforeAll(async () => {
  mock = await startOpenAIMock({ reply: () => EVIL });
});

test.afterAll(async () => {
  await mock?.close();
});

test('model output renders as sanitised Markdown: HTML shows as text and runs nothing', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto('/sources');
  await page.getByRole('button', { name: 'Add fuse-studio serve (port 8765)' }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Base URL').fill(mock.baseURL);
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByLabel('Responses per prompt', { exact: true }).fill('1');

  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
  await page.getByLabel('Domain for this import').selectOption('other');
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'one.csv', mimeType: 'text/csv', buffer: Buffer.from('prompt\nShow me some markdown\n') });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText('1 prompt(s)');
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByTestId('set-counts')).toContainText('1 SFT row(s)', { timeout: 20_000 });

  await page.getByRole('button', { name: 'Open prompt: Show me some markdown' }).click();
  const response = page.getByRole('article', { name: /^Response: / });
  const body = response.locator('.response-body');
  await expect(body).toContainText('<img src=x onerror="window.__xss=1">');
  await expect(body).toContainText('<script>window.__xss=2</script>');
  await expect(body.locator('img, script, iframe')).toHaveCount(0);
  // The javascript: link keeps its text but loses its href; the https one keeps it, safely.
  await expect(body.getByTitle('link removed: unsafe URL')).toHaveText('x');
  await expect(body.locator('a[href^="javascript"]')).toHaveCount(0);
  const safe = body.getByRole('link', { name: 'safe one' });
  await expect(safe).toHaveAttribute('href', 'https://example.com/docs');
  await expect(safe).toHaveAttribute('rel', 'noopener noreferrer');
  await body.getByTitle('link removed: unsafe URL').click();
  // Markdown still renders: a code block, a table, math ($$…$$ and \(…\); a single $ is text).
  await expect(body.locator('pre code')).toContainText('print("hello")');
  await expect(body.locator('table td').first()).toHaveText('1');
  await expect(body.locator('.katex')).toHaveCount(2);
  await expect(body).toContainText('prices stay text: $5 and $10.');

  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  await page.screenshot({ path: test.info().outputPath('markdown.png'), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) {
    await mkdir('docs/screenshots', { recursive: true });
    await page.screenshot({ path: 'docs/screenshots/markdown.png', fullPage: true });
  }
  expect(errors).toEqual([]);
});
