// Why a model did not load, said so a person knows what to do next. The loaders' own messages
// name the file and the HTTP status; what they cannot say is what a browser hides: a request that
// fails outright ("Failed to fetch") is a network that is down, a server that is not running, or
// a server that refused without CORS headers, which is how the Hub answers a gated or private repo
// asked without a token. Pure, so it is unit-tested.

/** What was being loaded, as far as the message needs it. */
export interface LoadAttempt {
  /** 'remote': a Hub repo, a preset or a URL; else a local folder, dropped files or the demo. */
  kind: 'demo' | 'remote' | 'directory' | 'files';
  /** The repo id or URL as typed. */
  spec?: string;
  /** Whether an access token was sent. */
  token?: boolean;
  /** The Hub address (a mirror) when not huggingface.co. */
  endpoint?: string;
}

/** Browsers' words for a request that got no HTTP answer at all (Chromium, Firefox, Safari, Node). */
const NETWORK_FAILURE = /failed to fetch|networkerror|network error|load failed|fetch failed|ERR_(CONNECTION|NAME|INTERNET|ADDRESS)/i;

export function isNetworkFailure(message: string): boolean {
  return NETWORK_FAILURE.test(message);
}

function hostOf(url: string | undefined): string | null {
  if (!url) return null;
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}

/** The URL at the start of a loader message ("https://…/config.json: …"), if any. */
function urlIn(message: string): string | null {
  return /\bhttps?:\/\/[^\s:]+(?::\d+)?[^\s:]*/.exec(message)?.[0] ?? null;
}

/** A load failure in plain words, with what to do next; the loader's own message kept at the end. */
export function explainLoadError(message: string, attempt: LoadAttempt): string {
  if (/cancell?ed/i.test(message) || /AbortError/.test(message)) return 'Loading was cancelled.';
  if (attempt.kind !== 'remote' || !isNetworkFailure(message)) return message;
  const host = hostOf(urlIn(message) ?? undefined) ?? hostOf(attempt.endpoint) ?? hostOf(attempt.spec) ?? 'huggingface.co';
  const what = attempt.spec ? `“${attempt.spec}”` : 'the model';
  const gated = attempt.token
    ? 'If the repo is gated or private, check that your token has access to it (accept its license on the repo’s Hub page while signed in to the account the token belongs to).'
    : 'If the repo is gated or private (Meta’s Llama repos are), the Hub refuses without a token and the browser reports only this: accept the license on the repo’s Hub page, then paste an access token.';
  return (
    `Could not reach ${host} to load ${what}: the request got no answer. ` +
    `If this device is offline, reconnect (or use a Hub mirror on your network, set under “Hub address”). ` +
    `If the server is your own, check that it is running and sends CORS headers. ${gated} (${message})`
  );
}
