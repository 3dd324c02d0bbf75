// The API server's own count of the requests it served (`apiserver_request_total` on /metrics), by
// verb and resource: read before and after a phase, the difference is what every client of the
// phase asked for. Watches are left out (one long request each, not one per object).
import * as k8s from '@kubernetes/client-node';
import { request } from 'undici';

/** Requests served so far, keyed `VERB resource[/subresource]`, summed over response codes. */
export async function apiRequestCounts(kc: k8s.KubeConfig): Promise<Map<string, number>> {
  // The client's own authentication and connections (src/kube/client.ts), on a non-resource path.
  const url = `${kc.getCurrentCluster()!.server}/metrics`;
  const context = new k8s.RequestContext(url, k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  const res = await request(url, { dispatcher: context.getDispatcher(), headers: context.getHeaders() });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^apiserver_request_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!]));
    if (labels.verb === 'WATCH' || !labels.resource) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** Requests per object between two readings, most frequent first, those under `min` left out. */
export function requestsPer(before: Map<string, number>, after: Map<string, number>, objects: number, min = 0.05): Array<[string, number]> {
  return [...after]
    .map(([key, n]): [string, number] => [key, (n - (before.get(key) ?? 0)) / objects])
    .filter(([, per]) => per >= min)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
