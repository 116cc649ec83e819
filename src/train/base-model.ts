// What an exported adapter names as its base model (adapter_config.json's
// base_model_name_or_path). PEFT and the Hub read it as a Hub repo id (or a path on the machine
// that loads the adapter), so it is never a URL or a relative path:
//   - the Hub repo id when the model came from the Hub or a mirror of it (hf://owner/repo, a
//     huggingface.co page, any `<host>/…/{owner}/{repo}/resolve/{rev}/…` URL, a Hub cache folder
//     `…/models--{owner}--{repo}/snapshots/…`);
//   - else what the user names (CLI --base-model-name, the Export page's field);
//   - else empty, and the export says what to put there (a warning and a README note).
// Pure (browser and Node); the CLI (commands/train.ts) and the studio (exportStore.ts,
// worker/export-service.ts) both use it.

export class BaseModelNameError extends Error {
  override name = 'BaseModelNameError';
}

/** A Hub owner or repo name. */
const NAME = /^[A-Za-z0-9][\w.-]*$/;
const isRepoId = (owner: string | undefined, repo: string | undefined) => Boolean(owner && repo && NAME.test(owner) && NAME.test(repo) && !repo.endsWith('.git'));
/** First path segments of huggingface.co that are not model owners. */
const NOT_MODELS = new Set(['datasets', 'spaces', 'api', 'docs', 'models', 'collections', 'papers', 'organizations', 'settings', 'blog']);

/** The Hub repo id `location` (a model source's description or spec) comes from, or null. */
export function hubRepoOf(location: string): string | null {
  const s = location.trim();
  if (s.startsWith('hf://')) {
    const [owner, repo, ...rest] = s.slice(5).split('@')[0]!.split('/').filter(Boolean);
    return !rest.length && isRepoId(owner, repo) ? `${owner}/${repo}` : null;
  }
  if (/^https?:\/\//i.test(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      return null;
    }
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return null;
    }
    // A mirror (or the Hub itself) serving raw files: …/{owner}/{repo}/resolve/{rev}/…
    const at = parts.lastIndexOf('resolve');
    if (at >= 2 && !NOT_MODELS.has(parts[at - 3] ?? '') && isRepoId(parts[at - 2], parts[at - 1])) return `${parts[at - 2]}/${parts[at - 1]}`;
    // A Hub page: huggingface.co/{owner}/{repo}[/tree/{rev}…]
    if (/^(www\.)?huggingface\.co$/i.test(url.hostname) && !NOT_MODELS.has(parts[0] ?? '') && isRepoId(parts[0], parts[1])) return `${parts[0]}/${parts[1]}`;
    return null;
  }
  // A folder of the Hub cache (huggingface_hub's layout).
  const cache = /(?:^|[\\/])models--([A-Za-z0-9][\w.]*(?:-[\w.]+)*?)--([A-Za-z0-9][\w.-]*)[\\/]snapshots(?:[\\/]|$)/.exec(s);
  return cache && isRepoId(cache[1], cache[2]) ? `${cache[1]}/${cache[2]}` : null;
}

/**
 * A name a user gives for base_model_name_or_path, trimmed: a Hub repo id (`owner/name`, or a
 * one-part legacy id like `gpt2`) or an absolute path; '' for none. Throws on a URL or a relative
 * path, which PEFT would resolve against wherever the adapter is loaded.
 */
export function checkBaseModelName(given: string, where = 'base model name'): string {
  const name = given.trim();
  if (!name) return '';
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(name))
    throw new BaseModelNameError(`${where} "${name}" is a URL: give the base model's Hub repo id (owner/name), e.g. meta-llama/Llama-3.2-1B-Instruct, or an absolute path`);
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) return name;
  const parts = name.split('/');
  if (name.includes('\\') || parts.length > 2 || parts.some((p) => !NAME.test(p)) || name.startsWith('~'))
    throw new BaseModelNameError(`${where} "${name}" is not a Hub repo id (owner/name) and not an absolute path: a relative path means nothing where the adapter is loaded`);
  return name;
}

export interface BaseModelName {
  /** What base_model_name_or_path holds: a Hub repo id, the user's name, or '' when unknown. */
  name: string;
  from: 'hub' | 'user' | 'unknown';
  /** When unknown: what to do about it (for a warning). */
  warning: string | null;
}

/**
 * base_model_name_or_path for an adapter of the model loaded from `location`: the name the user
 * gives (checked), else the Hub repo id the location comes from, else unknown with a warning.
 */
export function resolveBaseModelName(location: string, given = '', where = 'base model name'): BaseModelName {
  const user = checkBaseModelName(given, where);
  if (user) return { name: user, from: 'user', warning: null };
  const hub = hubRepoOf(location);
  if (hub) return { name: hub, from: 'hub', warning: null };
  return {
    name: '',
    from: 'unknown',
    warning: `the base model (${location}) was not loaded from the Hugging Face Hub or a mirror of it, so adapter_config.json's base_model_name_or_path is left empty: name the base model's Hub repo id (or an absolute path) to fill it in, or set it in adapter_config.json before sharing the adapter (README.md in the adapter folder says how)`,
  };
}

/** README.md for an adapter whose base model is unknown: what to put in base_model_name_or_path. */
export function unknownBaseModelReadme(location: string): string {
  return `# LoRA adapter (PEFT format)

\`adapter_config.json\` and \`adapter_model.safetensors\`: a LoRA adapter exported by Fuse Studio.

## base_model_name_or_path is empty

The base model was loaded from \`${location}\`, not from the Hugging Face Hub or a mirror of it,
so its Hub name is not known and \`base_model_name_or_path\` in \`adapter_config.json\` is empty.
Put the base model's Hub repo id there (for example \`"meta-llama/Llama-3.2-1B-Instruct"\`), or
the absolute path of the base model's folder on the machine that loads the adapter. Fuse Studio
fills it in when told: \`fuse-studio train … --base-model-name OWNER/NAME\`, or the "Base model
name" field on the Export page.

Loading works without it when you load the base model yourself:

    from transformers import AutoModelForCausalLM
    from peft import PeftModel
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "this-folder")

\`AutoPeftModelForCausalLM.from_pretrained("this-folder")\` and the Hub's model pages need the name.
`;
}
