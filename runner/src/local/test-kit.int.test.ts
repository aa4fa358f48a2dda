import { defineBot } from '@orderly/shared/sdk';
import { replayCrash, runBotForTest } from './test-kit';

const PAGE = 'http://portal.test/';
const setup = async ({ page }: { page: import('playwright-core').Page }) => {
  await page.route(`${PAGE}**`, (route) => route.fulfill({ contentType: 'text/html', body: '<title>Synthetic portal</title><h1>hello</h1>' }));
};

const submitted: string[] = [];
const bot = defineBot<{ portalUrl: string }>({
  async run({ page, input, log, secrets, step }) {
    const title = await step('open', async () => {
      await page.goto(input.portalUrl);
      return page.title();
    });
    log.info({ token: secrets.token }, 'logged in');
    const receipt = await step(
      'submit',
      async () => {
        submitted.push(title);
        return 'R-1';
      },
      { onUncertain: { verify: async () => (await page.textContent('h1')) === 'hello' } },
    );
    await step('finish', async () => 'ok');
    return { title, receipt };
  },
});

test('a bot runs against a local page in a real Chromium; steps recorded, log redacted', async () => {
  submitted.length = 0;
  const out = await runBotForTest(bot, { input: { portalUrl: PAGE }, secrets: { token: 'fake-token-9f8e7d6c5b4a' }, setup });
  expect(out.ok).toBe(true);
  expect(out.result).toEqual({ title: 'Synthetic portal', receipt: 'R-1' });
  expect(out.steps.map((s) => [s.name, s.outcome])).toEqual([
    ['open', 'ran'],
    ['submit', 'ran'],
    ['finish', 'ran'],
  ]);
  const text = out.lines.map((l) => l.msg).join('\n');
  expect(text).toContain('logged in');
  expect(text).not.toContain('fake-token-9f8e7d6c5b4a');
});

test('a crash after a step is replayed: the next attempt gets the earlier steps as done', async () => {
  submitted.length = 0;
  const { first, second } = await replayCrash(bot, { input: { portalUrl: PAGE }, setup, crashAfter: 'submit' });
  expect(first).toMatchObject({ ok: false, crashed: true, errorCode: 'TEST_CRASH' });
  expect(second.ok).toBe(true);
  expect(second.steps.map((s) => [s.name, s.outcome])).toEqual([
    ['open', 'replayed'],
    ['submit', 'replayed'],
    ['finish', 'ran'],
  ]);
  expect(submitted).toHaveLength(1);
});

test('an uncertain step runs onUncertain; without a policy it is ORDERLY_E_STEP_UNCERTAIN', async () => {
  submitted.length = 0;
  const verified = await runBotForTest(bot, { input: { portalUrl: PAGE }, setup, uncertain: ['submit'] });
  expect(verified.ok).toBe(true);
  expect(verified.steps.find((s) => s.name === 'submit')?.outcome).toBe('verified');
  expect(submitted).toHaveLength(0);
  const refused = await runBotForTest(bot, { input: { portalUrl: PAGE }, setup, uncertain: ['open'] });
  expect(refused).toMatchObject({ ok: false, errorCode: 'ORDERLY_E_STEP_UNCERTAIN' });
});
