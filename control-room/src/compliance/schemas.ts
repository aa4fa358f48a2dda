import { z } from 'zod';
import { CHECK_RESULTS } from './checks';
import { BotInventoryView } from './inventory';

/** The signed compliance report as the CLI receives it (parsed on the receiving side). */
export const ComplianceReportView = z.object({
  v: z.literal(1),
  id: z.string(),
  collectedAt: z.string(),
  version: z.string(),
  summary: z.record(z.enum(CHECK_RESULTS), z.number()),
  results: z.array(
    z.object({
      controlId: z.string(),
      checkId: z.string(),
      title: z.string(),
      result: z.enum(CHECK_RESULTS),
      expected: z.string(),
      observed: z.string(),
      evidenceSha256: z.string(),
      collectedAt: z.string(),
      version: z.string(),
    }),
  ),
  inventory: BotInventoryView.optional(),
  digest: z.string(),
  signature: z.string(),
});
export type ComplianceReportView = z.infer<typeof ComplianceReportView>;
export const EvidenceRecorded = z.object({ recorded: z.string() });
