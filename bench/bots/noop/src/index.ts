import { defineBot } from '@orderly/shared/sdk';

/** The whole pipeline around a bot that does nothing: what raw BullMQ's no-op job is to BullMQ. */
export default defineBot<{ n: number }>({
  async run({ input }) {
    return { n: input.n };
  },
});
