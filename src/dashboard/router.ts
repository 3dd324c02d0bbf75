// Pages with stable URLs (bookmarkable, shareable): the History API, no hash routing.
import { useEffect, useState } from 'preact/hooks';

export interface Location {
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();
const current = (): Location => ({ path: window.location.pathname, query: new URLSearchParams(window.location.search) });

export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  listeners.forEach((fn) => fn());
}

window.addEventListener('popstate', () => listeners.forEach((fn) => fn()));

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () => setLocation(current());
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return location;
}

/** A link that changes the page without reloading it. */
export function linkProps(href: string) {
  return {
    href,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
      e.preventDefault();
      navigate(href);
    },
  };
}
