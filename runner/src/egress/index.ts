// The sandbox's egress path: the proxy the runner starts per sandbox, the bridge and helpers that
// run inside it, and the allow-list matcher both the proxy and the browser's route filter use.
export { EGRESS_REFUSED_CODE, startEgressProxy } from './proxy';
export type { EgressLookup, EgressPolicy, EgressProxy, EgressProxyOptions, EgressRefusal, EgressRefusalReason } from './proxy';
export { bridgeLoopbackToSocket, bridgeProxyUrl, chromiumProxyArgs, proxyEnvironment } from './bridge';
export { EgressRefusedError, createEgressFetch } from './fetch';
export { HostAllowList, canonicalHost, isAllowedUrl, parseHostPattern } from './allow-list';
export { classifyAddress, normalizeAddress } from './address-class';
export type { AddressClass, NormalizedAddress } from './address-class';
