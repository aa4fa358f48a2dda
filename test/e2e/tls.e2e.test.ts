import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { packBot, runnerTokenPath } from '@orderly/control-room';
import { httpControlRoomClient } from '../../runner/src/control-room-client';
import { digestOf, PackageDigest } from '@orderly/shared';
import { REPO, Stack, startStack } from '../harness';

/**
 * The control room over HTTPS with a CA, server and client certificates made at runtime with
 * openssl: TLS 1.3 only, and runner routes only for runners with a certificate from the client CA.
 */
let stack: Stack;
let certs: Record<'ca' | 'serverCert' | 'serverKey' | 'runnerCert' | 'runnerKey' | 'strangerCert' | 'strangerKey', string>;
let origin: URL;
let certDir: string;

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A throwaway CA, a server certificate for 127.0.0.1, a runner certificate, and one from another CA. */
function makeCertificates(dir: string): typeof certs {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=orderly-test-ca');
  openssl(dir, 'req', '-x509', ...ec, '-keyout', 'stranger-ca.key', '-out', 'stranger-ca.crt', '-days', '1', '-subj', '/CN=stranger-ca');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = (name: string, cn: string, ca: string, ext: string) => {
    openssl(dir, 'req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      ext,
    );
  };
  issue('server', 'localhost', 'ca', 'server.ext');
  issue('runner', 'runner-demo', 'ca', 'client.ext');
  issue('stranger', 'runner-demo', 'stranger-ca', 'client.ext');
  const at = (f: string) => join(dir, f);
  return {
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    runnerCert: at('runner.crt'),
    runnerKey: at('runner.key'),
    strangerCert: at('stranger.crt'),
    strangerKey: at('stranger.key'),
  };
}

/** JSON over HTTPS trusting the test CA (the global fetch cannot be given a CA). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function https(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, origin),
      {
        method,
        ca: readFileSync(certs.ca),
        headers: { authorization: `Bearer ${stack.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'), protocol });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'orderly-tls-'));
  certs = makeCertificates(certDir);
  stack = await startStack({
    vault: false,
    controlRoomEnv: { ORDERLY_TLS_CERT_FILE: certs.serverCert, ORDERLY_TLS_KEY_FILE: certs.serverKey, ORDERLY_TLS_CLIENT_CA_FILE: certs.ca },
  });
  origin = new URL(stack.controlRoom.url);
}, 60_000);
afterAll(async () => {
  await stack?.close();
  rmSync(certDir, { recursive: true, force: true });
});

test('the control room serves HTTPS with TLS 1.3', async () => {
  expect(origin.protocol).toBe('https:');
  const res = await https('GET', '/healthz');
  expect({ status: res.status, protocol: res.protocol }).toEqual({ status: 200, protocol: 'TLSv1.3' });
});

test('a TLS 1.2 client is refused at the handshake', async () => {
  const outcome = await new Promise<string>((resolve) => {
    const socket = connect({ host: origin.hostname, port: Number(origin.port), ca: readFileSync(certs.ca), maxVersion: 'TLSv1.2', servername: 'localhost' });
    socket.on('secureConnect', () => {
      resolve(`connected with ${socket.getProtocol()}`);
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  expect(outcome).toMatch(/^ERR_SSL_|^ECONNRESET$/);
});

test('people need no client certificate; runner routes need one from the client CA', async () => {
  const packed = await packBot(join(REPO, 'test', 'fixtures', 'bots', 'slow'), stack.publisher.privateKeyPem);
  // The key's holder, in a team that claims the bot at its first publish.
  expect((await https('POST', '/v1/users', { username: 'tls-dev', roles: ['developer'] })).status).toBe(201);
  expect((await https('POST', '/v1/teams', { name: 'tls-team' })).status).toBe(201);
  expect((await https('POST', '/v1/teams/tls-team/members', { kind: 'user', name: 'tls-dev' })).status).toBe(200);
  const owner = { kind: 'user', name: 'tls-dev' };
  expect((await https('POST', '/v1/keys', { name: 'tls-publisher', publicKeyPem: stack.publisher.publicKeyPem, owner })).status).toBe(201);
  expect((await https('POST', '/v1/packages', { archive: packed.archive.toString('base64'), envelope: packed.envelope })).status).toBe(201);

  const token = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
  const ca = readFileSync(certs.ca);
  const without = httpControlRoomClient(stack.controlRoom.url, token, { ca });
  await expect(without.fetchPackage(packed.digest)).rejects.toMatchObject({ code: 'ORDERLY_E_CLIENT_CERT_REQUIRED' });
  const stranger = httpControlRoomClient(stack.controlRoom.url, token, { ca, cert: readFileSync(certs.strangerCert), key: readFileSync(certs.strangerKey) });
  await expect(stranger.packageRelease(packed.digest)).rejects.toMatchObject({ code: 'ORDERLY_E_CLIENT_CERT_REQUIRED' });

  const runner = httpControlRoomClient(stack.controlRoom.url, token, { ca, cert: readFileSync(certs.runnerCert), key: readFileSync(certs.runnerKey) });
  const fetched = await runner.fetchPackage(packed.digest);
  expect(digestOf(Buffer.from(fetched.archive, 'base64'))).toBe(packed.digest);
  await expect(runner.packageRelease(`sha256:${'0'.repeat(64)}` as PackageDigest)).rejects.toMatchObject({ code: 'ORDERLY_E_NOT_FOUND' });
  // A client certificate is not a credential by itself: the runner token is still required.
  const noToken = httpControlRoomClient(stack.controlRoom.url, 'orderly_not-a-real-runner-token', {
    ca,
    cert: readFileSync(certs.runnerCert),
    key: readFileSync(certs.runnerKey),
  });
  await expect(noToken.packageRelease(packed.digest)).rejects.toMatchObject({ code: 'ORDERLY_E_UNAUTHENTICATED' });
});
