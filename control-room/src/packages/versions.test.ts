import { compareBotVersions } from './versions';

test('versions sort by semantic-version precedence, not as text or by upload order', () => {
  // semver.org §11's own example, shuffled, plus numbers that sort wrongly as text.
  const ordered = [
    '1.0.0-alpha',
    '1.0.0-alpha.1',
    '1.0.0-alpha.beta',
    '1.0.0-beta',
    '1.0.0-beta.2',
    '1.0.0-beta.11',
    '1.0.0-rc.1',
    '1.0.0',
    '1.0.5',
    '1.2.0',
    '1.10.0',
    '2.0.0',
    '10.0.0',
    '12345678901234567890.0.0',
  ];
  const shuffled = [...ordered].reverse().sort((a, b) => (a.length % 3) - (b.length % 3));
  expect(shuffled.sort(compareBotVersions)).toEqual(ordered);
  expect(compareBotVersions('1.0.0', '1.0.0')).toBe(0);
  expect(compareBotVersions('1.0.0-rc.1', '1.0.0-rc.1')).toBe(0);
});
