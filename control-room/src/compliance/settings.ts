import { ControlRoomConfig } from '../config';
import { ComplianceSettings } from './facts';

/** The slice of the control room's configuration the compliance checks judge. */
export function complianceSettings(config: ControlRoomConfig, bootstrapRunnerSegments: readonly string[] = []): ComplianceSettings {
  return {
    production: config.production,
    segments: config.segments,
    prodSegments: config.prodSegments,
    tls: config.tls,
    tlsTerminated: config.tlsTerminated,
    transitKey: config.transitKey,
    sessionIdleMinutes: config.sessionIdleMinutes,
    sessionMaxHours: config.sessionMaxHours,
    tokenMaxDays: config.tokenMaxDays,
    credentialMaxAgeDays: config.credentialMaxAgeDays,
    screenshotRetentionDays: config.screenshotRetentionDays,
    auditRetentionDays: config.auditRetentionDays,
    runRetentionDays: config.runRetentionDays,
    alertWebhook: config.alerts.webhookUrl !== undefined,
    bootstrapRunnerSegments,
    ...(config.sso ? { sso: { breakGlassUsers: config.breakGlassUsers } } : {}),
  };
}
