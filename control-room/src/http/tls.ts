import { readFileSync } from 'node:fs';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { FastifyInstance } from 'fastify';
import { OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';

/** The TLS part of the control room's configuration (see `config.ts`). */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** When set: runners must present a certificate issued by this CA on runner routes (mTLS). */
  clientCaFile: string | undefined;
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `cannot read the ${what} at ${path}`);
  }
}

/**
 * Options for Fastify's `https`: TLS 1.3 only. With a client CA, certificates are requested but
 * not required at the handshake: people's browsers and the CLI have none, and only runner routes
 * need one (`requireRunnerCertificates` checks them per request).
 */
export function httpsOptions(tls: TlsConfig): TlsOptions & SecureContextOptions {
  return {
    cert: read(tls.certFile, 'TLS certificate (ORDERLY_TLS_CERT_FILE)'),
    key: read(tls.keyFile, 'TLS private key (ORDERLY_TLS_KEY_FILE)'),
    minVersion: 'TLSv1.3',
    ...(tls.clientCaFile ? { ca: read(tls.clientCaFile, 'client CA (ORDERLY_TLS_CLIENT_CA_FILE)'), requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/**
 * With mTLS configured, every `runner.api` route needs a client certificate the TLS layer
 * verified against the client CA: a stolen runner token alone no longer reaches the runner API.
 */
export function requireRunnerCertificates(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.permission !== 'runner.api') return;
    const socket = request.raw.socket as Partial<TLSSocket>;
    if (socket.authorized !== true) {
      throw new OrderlyError('ORDERLY_E_CLIENT_CERT_REQUIRED', 'runner routes need a client certificate issued by the configured client CA');
    }
  });
}

/** Plain HTTP outside production is allowed for demos and tests, but never quietly. */
export function warnIfPlainHttp(transport: { tls: boolean; terminated: boolean; production: boolean }, log: Logger): void {
  if (transport.tls || transport.terminated) return;
  log.warn(
    { production: transport.production },
    'PLAIN HTTP: the control room serves tokens, packages and run inputs without TLS; set ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE (or ORDERLY_TLS_TERMINATED=true behind a TLS proxy) before real use',
  );
}
