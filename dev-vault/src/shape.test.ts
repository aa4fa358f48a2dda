import { shapeMismatches } from './shape';

describe('shapeMismatches', () => {
  it('accepts equal shapes with different values and extra fields', () => {
    expect(shapeMismatches({ a: 'x', b: 1, c: [true], d: { e: null } }, { a: 'y', b: 2, c: [false, true], d: { e: null }, extra: 1 })).toEqual([]);
  });

  it('reports missing fields and type changes with their path', () => {
    expect(shapeMismatches({ data: { ttl: 1, keys: ['a'] }, auth: null }, { data: { ttl: '1', keys: [3] }, auth: 'x' })).toEqual([
      '$.data.ttl: expected number, got string',
      '$.data.keys[0]: expected string, got number',
      '$.auth: expected null (or a map/list), got string',
    ]);
    expect(shapeMismatches({ wrap_info: { token: 't' } }, { wrap_info: {} })).toEqual(['$.wrap_info.token: missing']);
  });

  it('lets a documented null stand for a filled map, but not the other way round', () => {
    expect(shapeMismatches({ metadata: null }, { metadata: { role_name: 'r' } })).toEqual([]);
    expect(shapeMismatches({ metadata: { role_name: 'r' } }, { metadata: null })).toEqual(['$.metadata: expected object, got null']);
  });

  it('skips ignored paths', () => {
    expect(shapeMismatches({ data: { identity_policies: ['x'] } }, { data: {} }, new Set(['$.data.identity_policies']))).toEqual([]);
  });
});
