// Integration and end-to-end tests start bot hosts, CLIs and the control room from `dist`, while
// Jest runs the tests from sources: a `dist` older than its sources would test yesterday's code
// and pass or fail for the wrong reason. So before the integration project runs, `tsc -b` brings
// `dist` up to date (incremental: a second or two when nothing changed). With
// ORDERLY_TEST_NO_BUILD=1 nothing is built, and a stale `dist` is refused instead.
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

module.exports = async function globalSetup() {
  if (process.env.ORDERLY_TEST_NO_BUILD === '1') {
    const dry = execFileSync(tsc, ['-b', '--dry'], { cwd: root, encoding: 'utf8' });
    const stale = dry.split('\n').filter((line) => line.includes('A non-dry build would build project'));
    if (stale.length > 0) {
      throw new Error(`dist is older than its sources (ORDERLY_TEST_NO_BUILD=1, so it is not rebuilt): run \`npx tsc -b\` first.\n${stale.join('\n')}`);
    }
    return;
  }
  try {
    execFileSync(tsc, ['-b'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`tsc -b failed, so dist cannot be trusted for integration tests:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
};
