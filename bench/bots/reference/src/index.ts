import { defineBot } from '@orderly/shared/sdk';

interface ReferenceInput {
  portalUrl: string;
  memberId: string;
  dateOfBirth: string;
}

/**
 * The bench's reference bot: the same Playwright calls as the raw baseline of run_overhead_ratio
 * (bench/raw-playwright.ts, `rawReferenceOnce`) and nothing else, so the ratio is Orderly's own.
 */
export default defineBot<ReferenceInput, { checked: true }>({
  async run({ page, input }) {
    await page.goto(new URL('/eligibility', input.portalUrl).toString());
    await page.fill('#member-id', input.memberId);
    await page.fill('#dob', input.dateOfBirth);
    await page.click('#check');
    await page.locator('#coverage-status').waitFor();
    return { checked: true };
  },
});
