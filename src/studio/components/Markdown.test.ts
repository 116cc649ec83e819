import { describe, expect, it } from 'vitest';
import { safeUrl } from './Markdown';

describe('safeUrl', () => {
  it('keeps http(s), mailto, fragments and relative links', () => {
    for (const u of ['https://example.com/a?b#c', 'http://127.0.0.1:8080/', 'mailto:a@b.c', '#top', '/docs', './x', '../y', 'page.html']) expect(safeUrl(u)).toBe(u);
  });
  it('drops javascript:, data:, vbscript: and obfuscated schemes', () => {
    for (const u of ['javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'java\nscript:x', 'data:text/html,<script>', 'vbscript:x'])
      expect(safeUrl(u), u).toBeUndefined();
    expect(safeUrl('')).toBeUndefined();
  });
});
