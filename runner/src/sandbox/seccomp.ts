import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { OrderlyError } from '@orderly/shared';

/** Debian's Python, which has python3-seccomp (a python3 earlier on PATH, e.g. pyenv's, may not). */
const PYTHON = '/usr/bin/python3';
const FILTER_SCRIPT = join(__dirname, '../../sandbox/seccomp-filter.py');

/**
 * Compiles the sandbox's seccomp filter once per runner start (libseccomp, through Debian's
 * python3-seccomp), as BPF for `bwrap --seccomp`. The filter is built for the machine it runs on.
 */
export function compileSeccompFilter(): Buffer {
  try {
    const bpf = execFileSync(PYTHON, [FILTER_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    // A BPF program is a whole number of 8-byte instructions; anything else is not one.
    if (bpf.length === 0 || bpf.length % 8 !== 0) throw new Error('not a BPF program');
    return bpf;
  } catch {
    throw new OrderlyError(
      'ORDERLY_E_SANDBOX_UNAVAILABLE',
      `the sandbox's seccomp filter could not be built: install Debian's python3-seccomp (apt-get install python3-seccomp; ${PYTHON} must import seccomp)`,
    );
  }
}
