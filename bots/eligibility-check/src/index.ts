import { BusinessError, defineBot } from '@orderly/shared/sdk';

interface EligibilityInput {
  portalUrl: string;
  memberId: string;
  dateOfBirth: string;
}

/** Checks one member's coverage. An unknown member is a business outcome, not worth a retry. */
export default defineBot<EligibilityInput, { coverage: string; plan: string }>({
  async run({ page, input, log, idempotencyKey, secrets }) {
    await page.goto(new URL('/eligibility', input.portalUrl).toString());
    if (new URL(page.url()).pathname === '/login') {
      // Credentials come leased from Vault for this run only; they are never logged.
      await page.fill('#username', secrets.portal_user ?? '');
      await page.fill('#password', secrets.portal_password ?? '');
      await page.click('#login');
      await page.locator('#member-id, #login-failed').first().waitFor();
      if (await page.locator('#login-failed').count()) throw new Error('portal sign-in failed: check the portal credentials in Vault');
    }
    await page.fill('#member-id', input.memberId);
    await page.fill('#dob', input.dateOfBirth);
    // The portal records the key, so a repeated submission can be told apart from a new one.
    await page.locator('#idempotency-key').evaluate((el, key) => ((el as HTMLInputElement).value = key), idempotencyKey);
    await page.click('#check');
    const outcome = page.locator('#coverage-status, #not-found');
    await outcome.first().waitFor();
    if (await page.locator('#not-found').count()) throw new BusinessError('member not found at the payer');
    const coverage = (await page.locator('#coverage-status').textContent())?.trim() ?? '';
    const plan = (await page.locator('#plan').textContent())?.trim() ?? '';
    log.info({ coverage }, 'eligibility checked');
    return { coverage, plan };
  },
});
