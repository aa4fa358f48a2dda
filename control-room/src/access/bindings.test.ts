import { SegmentName } from '@orderly/shared';
import { bindingsOf, canIn, covers, parseBinding, segmentsWith } from './bindings';
import { Principal } from './permissions';
import { permissionsOf } from './roles';

const seg = (name: string) => SegmentName.parse(name);
const person = (roles: string[]): Principal => ({ kind: 'user', id: 'u1', actor: 'user:u1', permissions: permissionsOf(roles), roles });

test('a binding is a role, or a run role in one segment; anything else grants nothing', () => {
  expect(parseBinding('operator')).toEqual({ role: 'operator', segment: null });
  expect(parseBinding('operator@dev')).toEqual({ role: 'operator', segment: seg('dev') });
  expect(parseBinding('developer@dev-2')).toEqual({ role: 'developer', segment: 'dev-2' });
  for (const bad of ['security@dev', 'approver@prod', 'admin@dev', 'operator@', 'operator@Dev', 'root', '@dev', 'operator@dev@prod'])
    expect(parseBinding(bad)).toBeUndefined();
  expect(bindingsOf(['operator@dev', 'nonsense'])).toEqual([{ role: 'operator', segment: seg('dev') }]);
  expect(permissionsOf(['nonsense']).size).toBe(0);
});

test('an operator of dev holds run permissions in dev only; its other permissions are not per segment', () => {
  const op = person(['operator@dev']);
  expect(canIn(op, 'runs.read', 'dev')).toBe(true);
  expect(canIn(op, 'runs.read', 'prod')).toBe(false);
  expect(canIn(op, 'runs.read_phi', 'prod')).toBe(false);
  expect(canIn(op, 'dlq.manage', 'prod')).toBe(false);
  expect(segmentsWith(op, 'runs.cancel')).toEqual(new Set(['dev']));
  expect(segmentsWith(op, 'packages.read')).toBe('all');
  // Two bindings add up; an unscoped one is everywhere.
  expect(segmentsWith(person(['operator@dev', 'operator@qa']), 'runs.read')).toEqual(new Set(['dev', 'qa']));
  expect(segmentsWith(person(['operator@dev', 'operator']), 'runs.read')).toBe('all');
  // A permission the role lacks is held nowhere, whatever the binding.
  expect(segmentsWith(person(['developer@dev']), 'runs.read_phi')).toEqual(new Set());
  expect(canIn(undefined, 'runs.read', 'dev')).toBe(false);
});

test('the bootstrap admin holds everything everywhere and covers every grant', () => {
  const admin: Principal = { kind: 'admin', id: 'admin', actor: 'admin', permissions: permissionsOf(['admin']), roles: ['admin'] };
  expect(canIn(admin, 'runs.read_phi', 'prod')).toBe(true);
  expect(covers(bindingsOf(['admin']), { role: 'security', segment: null })).toBe(true);
});

test('a grant is covered only by the same role, everywhere or in the same segment', () => {
  const own = bindingsOf(['operator', 'developer@dev']);
  expect(covers(own, { role: 'operator', segment: seg('prod') })).toBe(true);
  expect(covers(own, { role: 'operator', segment: null })).toBe(true);
  expect(covers(own, { role: 'developer', segment: seg('dev') })).toBe(true);
  expect(covers(own, { role: 'developer', segment: seg('prod') })).toBe(false);
  expect(covers(own, { role: 'developer', segment: null })).toBe(false);
  expect(covers(own, { role: 'approver', segment: null })).toBe(false);
});
