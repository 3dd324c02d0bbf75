// The A/B split: which version answers a request that names a model without a version. Weights
// are shares of any positive scale ({"1.2.0": 90, "2.0.0-alpha": 10}). A caller with a sticky
// value (a header's) always lands on the same version while the split is unchanged: the value's
// hash takes the place of the random draw.
import { createHash } from 'node:crypto';

/** A draw in [0, 1): the sticky value's hash, or `random()`. */
export function drawOf(sticky: string | undefined, salt: string, random: () => number = Math.random): number {
  if (sticky === undefined) return random();
  const digest = createHash('sha256').update(`${salt}\u0000${sticky}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** The version whose share of the cumulative weights holds `draw`. */
export function pickVersion(split: Record<string, number>, draw: number): string {
  // A stable order, whatever order the JSON column returns the keys in.
  const versions = Object.keys(split).sort();
  const total = versions.reduce((sum, v) => sum + split[v]!, 0);
  let edge = 0;
  for (const v of versions) {
    edge += split[v]! / total;
    if (draw < edge) return v;
  }
  return versions[versions.length - 1]!;
}
