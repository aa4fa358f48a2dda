import { expectNoFields, formFields } from './request-body';

test('a form that sends nothing accepts no body, and refuses a null body or any field', () => {
  expect(() => expectNoFields(undefined)).not.toThrow();
  expect(() => expectNoFields({})).not.toThrow();
  for (const hostile of [null, { unexpectedField: 'x' }, [], 'text'])
    expect(() => expectNoFields(hostile)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ORDERLY_E_/) }));
});

test("a form's fields are text in an object; a null, array or non-text field is refused", () => {
  expect(formFields(undefined)).toEqual({});
  expect(formFields({ reason: 'rotation drill' })).toEqual({ reason: 'rotation drill' });
  for (const hostile of [null, [], 'text', { n: 1 }, { nested: {} }])
    expect(() => formFields(hostile)).toThrow(expect.objectContaining({ code: 'ORDERLY_E_BAD_REQUEST' }));
});
