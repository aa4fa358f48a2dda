/**
 * Semantic-version precedence (semver.org §11) of bot versions (`MAJOR.MINOR.PATCH[-PRERELEASE]`;
 * BotVersion admits no build metadata): negative when `a` comes before `b`. Used to pick a
 * development segment's default version by version number rather than by upload time.
 */
export function compareBotVersions(a: string, b: string): number {
  const [coreA, preA] = split(a);
  const [coreB, preB] = split(b);
  for (let i = 0; i < 3; i++) if (coreA[i] !== coreB[i]) return coreA[i]! < coreB[i]! ? -1 : 1;
  // A pre-release comes before its release.
  if (preA === undefined || preB === undefined) return preA === preB ? 0 : preA === undefined ? 1 : -1;
  const idsA = preA.split('.');
  const idsB = preB.split('.');
  for (let i = 0; i < Math.min(idsA.length, idsB.length); i++) {
    const order = compareIdentifier(idsA[i]!, idsB[i]!);
    if (order !== 0) return order;
  }
  return Math.sign(idsA.length - idsB.length);
}

function split(version: string): [bigint[], string | undefined] {
  const dash = version.indexOf('-');
  const core = dash === -1 ? version : version.slice(0, dash);
  // BigInt: a version part may be longer than a double holds exactly.
  return [core.split('.').map((part) => BigInt(part)), dash === -1 ? undefined : version.slice(dash + 1)];
}

/** Numeric identifiers compare as numbers and come before alphanumeric ones, which compare in ASCII order. */
function compareIdentifier(a: string, b: string): number {
  const numA = /^\d+$/.test(a);
  const numB = /^\d+$/.test(b);
  if (numA && numB) return BigInt(a) === BigInt(b) ? 0 : BigInt(a) < BigInt(b) ? -1 : 1;
  if (numA !== numB) return numA ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}
