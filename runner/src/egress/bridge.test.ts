import { bridgeProxyUrl, chromiumProxyArgs, proxyEnvironment } from './bridge';

describe('proxy settings for the sandbox', () => {
  it('points every proxy variable, both cases, at the bridge and bypasses nothing', () => {
    expect(proxyEnvironment(41234)).toEqual({
      HTTP_PROXY: 'http://127.0.0.1:41234',
      http_proxy: 'http://127.0.0.1:41234',
      HTTPS_PROXY: 'http://127.0.0.1:41234',
      https_proxy: 'http://127.0.0.1:41234',
      ALL_PROXY: 'http://127.0.0.1:41234',
      all_proxy: 'http://127.0.0.1:41234',
      NO_PROXY: '',
      no_proxy: '',
    });
  });

  it('sends Chromium, loopback included, through the bridge', () => {
    expect(chromiumProxyArgs(41234)).toEqual([
      '--proxy-server=http://127.0.0.1:41234',
      '--proxy-bypass-list=<-loopback>',
      '--force-webrtc-ip-handling-policy=disable_non_proxied_udp',
    ]);
    expect(bridgeProxyUrl(1)).toBe('http://127.0.0.1:1');
  });
});
