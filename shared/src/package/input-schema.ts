import { z } from 'zod';
import { OrderlyError } from '../errors';
import { inputPattern, inputPatternProblem } from './pattern';

/** Marks a schema issue that has a code of its own (parseManifest reports it instead of the generic one). */
export const PATTERN_ISSUE = { orderlyCode: 'ORDERLY_E_INPUT_PATTERN_UNSUPPORTED' } as const;

/**
 * The bot's input schema: a deliberately small subset of JSON Schema (a flat object of strings,
 * numbers, integers and booleans). Small enough to audit, and it always forbids extra fields so
 * a caller cannot smuggle undeclared (and so unredacted) data into a run.
 */
const FieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/);
const StringField = z.strictObject({
  type: z.literal('string'),
  description: z.string().max(500).optional(),
  minLength: z.number().int().min(0).optional(),
  maxLength: z.number().int().min(1).max(10_000).optional(),
  pattern: z
    .string()
    .max(500)
    .superRefine((source, ctx) => {
      const problem = inputPatternProblem(source);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: `pattern is not a valid RE2 regular expression (${problem})`, params: PATTERN_ISSUE });
    })
    .optional(),
  format: z.enum(['date', 'email']).optional(),
  enum: z.array(z.string()).min(1).optional(),
});
const NumberField = z.strictObject({
  type: z.enum(['number', 'integer']),
  description: z.string().max(500).optional(),
  minimum: z.number().optional(),
  maximum: z.number().optional(),
});
const BooleanField = z.strictObject({ type: z.literal('boolean'), description: z.string().max(500).optional() });
export const InputField = z.discriminatedUnion('type', [StringField, NumberField, BooleanField]);

export const InputSchema = z
  .strictObject({
    type: z.literal('object'),
    properties: z.record(FieldName, InputField),
    required: z.array(FieldName).default([]),
    additionalProperties: z.literal(false).default(false),
  })
  .refine((s) => s.required.every((name) => Object.hasOwn(s.properties, name)), { message: 'every required field must be a declared property' });
export type InputSchema = z.infer<typeof InputSchema>;

function fieldToZod(field: z.infer<typeof InputField>): z.ZodType {
  switch (field.type) {
    case 'string': {
      if (field.enum) return z.enum(field.enum as [string, ...string[]]);
      let s = field.format === 'date' ? z.iso.date() : field.format === 'email' ? z.email() : z.string();
      if (field.minLength !== undefined) s = s.min(field.minLength);
      if (field.maxLength !== undefined) s = s.max(field.maxLength);
      if (field.pattern !== undefined) {
        // Never `RegExp`: see pattern.ts. A stored manifest from before this check fails here with its code.
        const pattern = inputPattern(field.pattern);
        s = s.refine((value) => pattern.test(value), { message: 'does not match the pattern' });
      }
      return s;
    }
    case 'number':
    case 'integer': {
      let n = field.type === 'integer' ? z.number().int() : z.number();
      if (field.minimum !== undefined) n = n.min(field.minimum);
      if (field.maximum !== undefined) n = n.max(field.maximum);
      return n;
    }
    case 'boolean':
      return z.boolean();
  }
}

/**
 * Validators already built, by schema object: building one (and zod compiling its fast path on
 * first parse) cost more than validating, once per run. A parsed manifest is never mutated, and a
 * schema object that is not held elsewhere any more drops out of the map.
 */
const validators = new WeakMap<InputSchema, z.ZodType<Record<string, unknown>>>();

/** Builds the zod validator for a manifest's input schema. */
export function inputValidator(schema: InputSchema): z.ZodType<Record<string, unknown>> {
  const built = validators.get(schema);
  if (built) return built;
  const shape: Record<string, z.ZodType> = {};
  for (const [name, field] of Object.entries(schema.properties)) {
    const validator = fieldToZod(field);
    shape[name] = schema.required.includes(name) ? validator : validator.optional();
  }
  const validator = z.strictObject(shape) as unknown as z.ZodType<Record<string, unknown>>;
  validators.set(schema, validator);
  return validator;
}

/**
 * Validates a run input. The error names the failing fields and the rule, never the value
 * (inputs hold PHI).
 */
export function validateInput(schema: InputSchema, input: unknown): Record<string, unknown> {
  const result = inputValidator(schema).safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.code}`);
    throw new OrderlyError('ORDERLY_E_INPUT_INVALID', `input does not match the bot's input schema (${problems.join('; ')})`, { problems });
  }
  return result.data;
}
