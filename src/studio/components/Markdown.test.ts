import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { latexMathToDollars, Markdown, safeUrl } from './Markdown';

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

const html = (text: string) => renderToStaticMarkup(createElement(Markdown, { text }));
const katexCount = (h: string) => (h.match(/class="katex"/g) ?? []).length;

describe('math in Markdown', () => {
  it('leaves single dollars as text: prices stay prices', () => {
    const h = html('It costs $5 and $10, or $x$ if you like.');
    expect(katexCount(h)).toBe(0);
    expect(h).toContain('It costs $5 and $10, or $x$ if you like.');
  });
  it('renders $$…$$ inline and as a display block', () => {
    expect(katexCount(html('Inline $$x^2$$ here.'))).toBe(1);
    const block = html('Before\n\n$$\n\\frac{a}{b}\n$$\n\nafter');
    expect(block).toContain('katex-display');
  });
  it('renders \\(…\\) inline and \\[…\\] as a display block', () => {
    const inline = html('Where \\(a_1 * b_1\\) is the product.');
    expect(katexCount(inline)).toBe(1);
    expect(inline).not.toContain('katex-display');
    // The math is KaTeX's, not Markdown's: no emphasis from the * and _ inside it.
    expect(inline).not.toContain('<em>');
    const display = html('The sum:\n\\[\n\\sum_{i=1}^n i\n\\]\nand the same on one line:\n\n\\[ x^2 \\]');
    expect((display.match(/katex-display/g) ?? []).length).toBe(2);
    expect(katexCount(html('A display in a sentence \\[x+1\\] stays inline.'))).toBe(1);
  });
  it('keeps code as written: inline code, fenced blocks and escaped backslashes', () => {
    const h = html('Use `re.escape("\\(")` then:\n\n```python\nprint("\\(x\\)")\n```\n\nand \\\\(not math\\\\).');
    expect(katexCount(h)).toBe(0);
    expect(h).toContain('<code>re.escape(&quot;\\(&quot;)</code>');
    expect(h).toContain('print(&quot;\\(x\\)&quot;)');
    expect(h).toContain('\\(not math\\)');
  });
  it('latexMathToDollars rewrites only the delimiters', () => {
    expect(latexMathToDollars('a \\(x\\) b')).toBe('a $$x$$ b');
    expect(latexMathToDollars('  \\[ y \\]')).toBe('  $$\n  y\n  $$');
    expect(latexMathToDollars('~~~\n\\(x\\)\n~~~\n\\(z\\)')).toBe('~~~\n\\(x\\)\n~~~\n$$z$$');
    // No blank line inside inline math: an unclosed \( is left alone.
    expect(latexMathToDollars('\\( a\n\nb \\)')).toBe('\\( a\n\nb \\)');
  });
});
