// Text shown exactly as it came (a judge's reply): whitespace kept, and an empty or
// whitespace-only text said in words, since it would otherwise look like nothing at all.

export function RawText({ text, label }: { text: string; label: string }) {
  const blank = text.trim() === '';
  return (
    <pre className="raw-text" aria-label={label}>
      {blank ? (text.length === 0 ? '(empty: no text at all)' : `(only whitespace: ${JSON.stringify(text).slice(0, 120)})`) : text}
    </pre>
  );
}
