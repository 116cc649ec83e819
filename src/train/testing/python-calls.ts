// Test helper: the keyword arguments a generated Python script passes, read with Python's own
// parser (ast), checked against a table of library signatures (recipe-signatures.ts).
import { execFileSync } from 'node:child_process';
import type { Signature } from './recipe-signatures';

/** The first of python3, /usr/bin/python3 that imports PyYAML (.ci/run installs both). */
export function findPython(): string {
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(py, ['-c', 'import yaml'], { stdio: 'ignore' });
      return py;
    } catch {
      // next
    }
  }
  throw new Error('python3 with PyYAML is needed by this test: apt-get install python3 python3-yaml (.ci/run does)');
}

// Every call with keyword arguments: the callee as dotted text, the keyword names, and each
// **splat as the name of the function whose call it expands (null for anything else). Module-level
// functions: their parameters, and the keys of `return dict(...)` when that is all they return.
const EXTRACT = `
import ast, json, sys
tree = ast.parse(open(sys.argv[1]).read(), sys.argv[1])
def dotted(n):
    if isinstance(n, ast.Name): return n.id
    if isinstance(n, ast.Attribute):
        base = dotted(n.value)
        return base + "." + n.attr if base else None
    return None
helpers = {}
for f in tree.body:
    if isinstance(f, ast.FunctionDef):
        rets = [r.value for r in ast.walk(f) if isinstance(r, ast.Return) and r.value is not None]
        keys = None
        if len(rets) == 1 and isinstance(rets[0], ast.Call) and dotted(rets[0].func) == "dict" and not rets[0].args:
            keys = [k.arg for k in rets[0].keywords]
        helpers[f.name] = {"params": [a.arg for a in f.args.args + f.args.kwonlyargs], "dictKeys": keys}
calls = []
for n in ast.walk(tree):
    if isinstance(n, ast.Call) and n.keywords:
        calls.append({
            "line": n.lineno,
            "callee": dotted(n.func),
            "keywords": [k.arg for k in n.keywords if k.arg is not None],
            "splats": [dotted(k.value.func) if isinstance(k.value, ast.Call) else None for k in n.keywords if k.arg is None],
        })
print(json.dumps({"helpers": helpers, "calls": sorted(calls, key=lambda c: c["line"])}))
`;

export interface PythonCall {
  line: number;
  callee: string | null;
  keywords: string[];
  splats: (string | null)[];
}

export interface PythonCalls {
  helpers: Record<string, { params: string[]; dictKeys: string[] | null }>;
  calls: PythonCall[];
}

export function pythonCalls(python: string, file: string): PythonCalls {
  return JSON.parse(execFileSync(python, ['-c', EXTRACT, file], { encoding: 'utf8' })) as PythonCalls;
}

/**
 * Problems with the keyword arguments of `calls`, one line each (empty when every one is known).
 * `callees` maps a callee as written in the script to its entry in `signatures`; `dict` builds
 * plain dicts (checked where they are splatted); functions the script defines are checked
 * against their own parameters. Any other call with keywords, and any splat that is not a call
 * to a `return dict(...)` helper, is a problem: nothing goes unchecked.
 */
export function keywordProblems(found: PythonCalls, callees: Readonly<Record<string, string>>, signatures: Readonly<Record<string, Signature>>): string[] {
  const problems: string[] = [];
  for (const c of found.calls) {
    if (c.callee === 'dict') continue;
    const at = `line ${c.line}: ${c.callee ?? '(expression)'}`;
    const names = [...c.keywords];
    for (const s of c.splats) {
      const keys = s ? found.helpers[s]?.dictKeys : null;
      if (!keys) problems.push(`${at}: **${s ?? '…'} is not a call of a helper returning dict(...), so its keys cannot be checked`);
      else names.push(...keys);
    }
    let accepts: readonly string[];
    let deprecated: readonly string[] = [];
    const local = c.callee ? found.helpers[c.callee] : undefined;
    const api = c.callee ? callees[c.callee] : undefined;
    if (local) accepts = local.params;
    else if (api && signatures[api]) {
      accepts = signatures[api].accepts;
      deprecated = signatures[api].deprecated ?? [];
    } else {
      problems.push(`${at}: no signature on record for this callee (keywords ${names.join(', ')})`);
      continue;
    }
    for (const k of names) {
      if (!accepts.includes(k)) problems.push(`${at}: ${api ?? 'local function'} has no keyword argument "${k}"`);
      else if (deprecated.includes(k)) problems.push(`${at}: ${api}'s keyword argument "${k}" is deprecated`);
    }
  }
  return problems;
}
