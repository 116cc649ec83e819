// Model output as Markdown, safely: GitHub-flavoured Markdown and math (KaTeX), nothing else.
//
// Math is `$$…$$` (inline, or a display block on its own lines) and LaTeX's `\(…\)` / `\[…\]`.
// A single `$` is text: answers write prices ("$5 and $10") far more often than `$x$` math.
//
// Model text is untrusted. Raw HTML is never parsed (no rehype-raw): an HTML fragment in the
// text (`<img onerror=…>`, `<script>`) becomes a text node first thing and shows as text.
// rehype-sanitize then checks the tree against GitHub's allow-list (plus the classes remark-math
// gives math), so only known-safe elements and attributes survive; rehype-katex runs after it,
// on the sanitised tree. Links keep only http(s)/mailto/relative URLs (a `javascript:` link loses
// its href), open in a new tab, and carry rel="noopener noreferrer". Images are not loaded
// (a model's image could track the reader): they show as their alt text and URL.

import { memo, type ComponentPropsWithoutRef } from 'react';
import ReactMarkdown, { type Components, type Options } from 'react-markdown';
import rehypeKatex from 'rehype-katex';
import rehypeSanitize, { defaultSchema } from 'rehype-sanitize';
import remarkGfm from 'remark-gfm';
import remarkMath from 'remark-math';
import 'katex/dist/katex.min.css';

const SAFE_URL = /^(https?:|mailto:|#|\.{0,2}\/)/i;

/** The href a link may keep: http(s), mailto, fragments and relative URLs; anything else is dropped. */
export function safeUrl(url: string | undefined | null): string | undefined {
  if (!url) return undefined;
  // Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
  // eslint-disable-next-line no-control-regex
  const squashed = url.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  if (SAFE_URL.test(squashed)) return url;
  // No scheme at all ("example.com/page", "page.html"): relative, harmless.
  if (!/^[a-z][a-z0-9+.-]*:/i.test(squashed)) return url;
  return undefined;
}

/** Any raw HTML in the text becomes a text node (shown, never parsed), before sanitising. */
function rehypeRawAsText() {
  type Node = { type: string; value?: string; children?: Node[] };
  const walk = (node: Node) => {
    if (!node.children) return;
    node.children = node.children.map((c) => (c.type === 'raw' ? { type: 'text', value: c.value ?? '' } : (walk(c), c)));
  };
  return (tree: Node) => walk(tree);
}

/**
 * LaTeX's `\(…\)` and `\[…\]` as remark-math's `$$…$$`. CommonMark reads `\(` as an escaped
 * "(" (the backslash is gone once parsed), so this runs on the text before parsing. Code is left
 * as written: fenced blocks, and inline code spans; so is an escaped backslash (`\\(`).
 */
export function latexMathToDollars(text: string): string {
  const out: string[] = [];
  let fence: string | null = null;
  let prose: string[] = [];
  const flush = () => {
    if (prose.length) out.push(convertProse(prose.join('\n')));
    prose = [];
  };
  for (const line of text.split('\n')) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === null && m) {
      flush();
      fence = m[1]!;
      out.push(line);
    } else if (fence !== null) {
      out.push(line);
      // A closing fence: the same character, at least as long, nothing after it.
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && line.trim() === m[1]) fence = null;
    } else prose.push(line);
  }
  flush();
  return out.join('\n');
}

// Inline code spans (kept), escaped backslashes (kept), \[…\] and \(…\) (no blank line inside).
const LATEX_MATH = /(`+)[\s\S]*?\1|\\\\|\\\[((?:(?!\n\s*\n)[\s\S])+?)\\\]|\\\(((?:(?!\n\s*\n)[\s\S])+?)\\\)/g;

function convertProse(text: string): string {
  return text.replace(LATEX_MATH, (whole, _ticks: string | undefined, display: string | undefined, inline: string | undefined, offset: number) => {
    if (display !== undefined) {
      // Alone on its line(s): a display block; inside a sentence: inline math.
      const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
      const indent = text.slice(lineStart, offset);
      const end = offset + whole.length;
      const after = text.indexOf('\n', end);
      const rest = text.slice(end, after === -1 ? text.length : after);
      if (/^[ \t]*$/.test(indent) && /^[ \t]*$/.test(rest)) return `$$\n${indent}${display.trim()}\n${indent}$$`;
      return `$$${display}$$`;
    }
    if (inline !== undefined) return `$$${inline}$$`;
    return whole;
  });
}

const schema = {
  ...defaultSchema,
  attributes: {
    ...defaultSchema.attributes,
    code: [['className', /^language-./, 'math-inline', 'math-display']],
  },
};

const components: Components = {
  a: ({ href, children, node: _n, ...rest }: ComponentPropsWithoutRef<'a'> & { node?: unknown }) => {
    const url = safeUrl(href);
    return url === undefined ? (
      <span className="md-link-removed" title="link removed: unsafe URL">
        {children}
      </span>
    ) : (
      <a {...rest} href={url} target="_blank" rel="noopener noreferrer">
        {children}
      </a>
    );
  },
  img: ({ src, alt }: ComponentPropsWithoutRef<'img'>) => (
    <span className="md-image">
      [image{alt ? `: ${alt}` : ''}
      {typeof src === 'string' && src ? ` — ${src}` : ''}]
    </span>
  ),
};

const REMARK_PLUGINS = [remarkGfm, [remarkMath, { singleDollarTextMath: false }]] satisfies Options['remarkPlugins'];

function MarkdownImpl({ text, className }: { text: string; className?: string }) {
  return (
    <div className={className ? `markdown ${className}` : 'markdown'}>
      <ReactMarkdown
        remarkPlugins={REMARK_PLUGINS}
        rehypePlugins={[rehypeRawAsText, [rehypeSanitize, schema], rehypeKatex]}
        urlTransform={(url) => safeUrl(url) ?? ''}
        components={components}
      >
        {latexMathToDollars(text)}
      </ReactMarkdown>
    </div>
  );
}

/** `text` (model output) rendered as sanitised Markdown with math and styled code blocks. */
export const Markdown = memo(MarkdownImpl);
