// Small formatting helpers shared by the pages.
export const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)}%` : '–');
export const num = (v: unknown, digits = 4) => (typeof v === 'number' ? v.toFixed(digits) : '–');
export const when = (v: unknown) => (typeof v === 'string' ? new Date(v).toLocaleString() : '–');
export const isActive = (status: string) => status === 'pending' || status === 'running';
