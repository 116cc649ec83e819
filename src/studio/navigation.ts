// In-app navigation: App routes on popstate, so moving between pages keeps the tab (and the
// model in its worker, a running job) alive.
import type { MouseEvent } from 'react';

export function navigateTo(path: string): void {
  if (window.location.pathname !== path) window.history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
  document.getElementById('main')?.focus();
}

/** A link's click as in-app navigation (modified clicks still open a new tab). */
export function onLinkClick(path: string) {
  return (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigateTo(path);
  };
}
