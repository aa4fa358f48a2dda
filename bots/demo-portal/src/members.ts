/**
 * Synthetic members of the demo payer. Member ids use the `ZZT` prefix and dates of birth fall in
 * the year 1900 so that nobody can mistake them for real people.
 */
export interface Member {
  memberId: string;
  dateOfBirth: string;
  name: string;
  coverage: 'Active' | 'Inactive';
  plan: string;
}

export const MEMBERS: readonly Member[] = [
  { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15', name: 'Testy McFake', coverage: 'Active', plan: 'Demo Gold PPO' },
  { memberId: 'ZZT100200302', dateOfBirth: '1900-02-28', name: 'Sample Synthetica', coverage: 'Inactive', plan: 'Demo Silver HMO' },
  { memberId: 'ZZT100200303', dateOfBirth: '1900-07-04', name: 'Placeholder Person', coverage: 'Active', plan: 'Demo Bronze EPO' },
];

export function findMember(memberId: string, dateOfBirth: string): Member | undefined {
  return MEMBERS.find((m) => m.memberId === memberId.trim().toUpperCase() && m.dateOfBirth === dateOfBirth.trim());
}
