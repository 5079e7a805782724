/** "Did you mean …?": the nearest of some names to a mistyped one. */

/** Edits (insert, delete, replace, swap of neighbours) from `a` to `b`. Pure. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The name of `names` closest to `word`, if one is close enough to be what was meant
 * (a third of its letters changed at most, or `word` is its start). Pure.
 * @example
 * ```ts
 * if (closestName("deplyo", ["deploy", "status"]) !== "deploy") throw new Error();
 * if (closestName("xyz", ["deploy", "status"]) !== undefined) throw new Error();
 * ```
 */
export function closestName(word: string, names: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = name.toLowerCase().startsWith(lower) && lower.length >= 3
      ? 0.5
      : distance(lower, name.toLowerCase());
    if (best === undefined || d < best.d) best = { name, d };
  }
  if (best === undefined || best.d === 0) return best?.d === 0 ? best.name : undefined;
  return best.d <= Math.max(1, Math.floor(Math.max(word.length, best.name.length) / 3))
    ? best.name
    : undefined;
}

/** " (did you mean 'deploy'?)", or "" when no name is close. Pure. */
export function didYouMean(word: string, names: readonly string[], quote = "'"): string {
  const name = closestName(word, names);
  return name === undefined ? "" : ` (did you mean ${quote}${name}${quote}?)`;
}
