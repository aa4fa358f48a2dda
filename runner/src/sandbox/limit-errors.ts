import { ErrorBody, errorBody } from '@orderly/shared';
import type { SandboxLimit } from './cgroup';

const LIMIT_MESSAGES: Record<SandboxLimit, string> = {
  memory: 'the run used more memory than its sandbox allows and was ended',
  processes: 'the run started more processes than its sandbox allows and was ended',
  cpu: 'the run used more CPU time than its sandbox allows and was ended',
  'file-size': 'the run wrote a file larger than its sandbox allows',
  'tmp-space': "the run filled its sandbox's temporary space",
};

/** The error a run ends with when it passes one of its sandbox's limits. Not retried: it would pass it again. */
export function limitError(limit: SandboxLimit): ErrorBody {
  return errorBody('ORDERLY_E_SANDBOX_LIMIT', LIMIT_MESSAGES[limit], { limit });
}
