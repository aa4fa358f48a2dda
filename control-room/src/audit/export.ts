import { isIP } from 'node:net';
import { canonicalJson } from '@orderly/shared';
import { AuditRecord } from './audit';

/**
 * Export formats a SIEM can ingest: JSON lines (the records as the API returns them, hashes
 * included, so an export can be verified later) and ArcSight CEF, one event per line.
 */

export const toJsonLine = (record: AuditRecord): string => JSON.stringify(record);

/** CEF header fields: `\` and `|` are escaped, line breaks become spaces. */
const header = (value: string): string =>
  value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
/** CEF extension values: `\` and `=` are escaped, line breaks become `\n` / `\r`. */
const ext = (value: string): string => value.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

function severity(record: AuditRecord): number {
  if (record.action.startsWith('security.')) return 9;
  if (record.outcome === 'denied') return 7;
  return record.outcome === 'failure' ? 5 : 3;
}

/** `CEF:0|Orderly|control-room|1|<action>|<action> <outcome>|<severity>|<extension>` */
export function toCefLine(record: AuditRecord): string {
  const pairs: [string, string | number][] = [
    ['rt', Date.parse(record.at)],
    ['act', record.action],
    ['suser', record.actor],
    ['outcome', record.outcome],
    ['cs1Label', 'target'],
    ['cs1', record.target],
    ['cn1Label', 'seq'],
    ['cn1', record.seq],
    ['cs4Label', 'hash'],
    ['cs4', record.hash],
  ];
  // CEF's src must be an IP address; anything else stays out rather than break a parser.
  if (record.sourceIp && isIP(record.sourceIp)) pairs.push(['src', record.sourceIp]);
  if (record.requestId) pairs.push(['cs2Label', 'requestId'], ['cs2', record.requestId]);
  const { ticket, code, status } = record.details;
  if (typeof ticket === 'string') pairs.push(['cs3Label', 'ticket'], ['cs3', ticket]);
  if (typeof code === 'string') pairs.push(['cs5Label', 'errorCode'], ['cs5', code]);
  if (typeof status === 'number') pairs.push(['cn2Label', 'httpStatus'], ['cn2', status]);
  pairs.push(['msg', canonicalJson(record.details).slice(0, 1023)]);
  const extension = pairs.map(([k, v]) => `${k}=${ext(String(v))}`).join(' ');
  return `CEF:0|Orderly|control-room|1|${header(record.action)}|${header(`${record.action} ${record.outcome}`)}|${severity(record)}|${extension}`;
}
