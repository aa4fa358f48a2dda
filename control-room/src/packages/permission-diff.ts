import { createHash } from 'node:crypto';
import { canonicalJson, PermissionDiffView, PermissionSet } from '@orderly/shared';
import type { StoredPackage } from './packages';

/** What a manifest may reach: the four lists an approver must see grow. */
function permissionsOf(pkg: StoredPackage): PermissionSet {
  const m = pkg.manifest;
  return { credentials: m.credentials, hosts: m.hosts, phi: m.phi, segments: m.segments };
}

const added = (candidate: readonly string[], base: readonly string[]): string[] => [...new Set(candidate.filter((x) => !base.includes(x)))].sort();

/**
 * The permission diff of `candidate` against the version in prod (`inProd`, or none): only what
 * it adds, since a version that declares less leases less. Its digest binds the two package
 * digests and the additions, so an acknowledgement is good for exactly this comparison: a new
 * prod release or another candidate changes it.
 */
export function permissionDiff(candidate: StoredPackage, inProd: StoredPackage | undefined): PermissionDiffView {
  const next = permissionsOf(candidate);
  const base: PermissionSet = inProd ? permissionsOf(inProd) : { credentials: [], hosts: [], phi: [], segments: [] };
  const diff: PermissionSet = {
    credentials: added(next.credentials, base.credentials),
    hosts: added(next.hosts, base.hosts),
    phi: added(next.phi, base.phi),
    segments: added(next.segments, base.segments),
  };
  const against = inProd ? { version: inProd.view.version, digest: inProd.view.digest } : null;
  const diffDigest = createHash('sha256')
    .update(canonicalJson({ v: 1, digest: candidate.view.digest, against: against?.digest ?? null, added: diff }))
    .digest('hex');
  return {
    name: candidate.view.name,
    version: candidate.view.version,
    digest: candidate.view.digest,
    against,
    added: diff,
    widens: Object.values(diff).some((list) => list.length > 0),
    diffDigest,
  };
}

/** The diff as lines for a terminal (the CLI prints these before it asks to promote). */
export function diffLines(diff: PermissionDiffView): string[] {
  const head = `${diff.name}@${diff.version} compared with ${diff.against ? `${diff.name}@${diff.against.version} (in prod)` : 'nothing in prod'}:`;
  if (!diff.widens) return [head, '  adds no credentials, hosts, PHI fields or segments'];
  const labels: [keyof PermissionSet, string][] = [
    ['credentials', 'credentials'],
    ['hosts', 'hosts'],
    ['phi', 'PHI fields'],
    ['segments', 'segments'],
  ];
  return [
    head,
    ...labels.filter(([k]) => diff.added[k].length > 0).map(([k, label]) => `  + ${label}: ${diff.added[k].join(', ')}`),
    `  diff digest ${diff.diffDigest}`,
  ];
}
