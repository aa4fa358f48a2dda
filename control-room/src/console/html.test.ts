import { consolePath, escapeHtml, html, time } from './html';

describe('the console template', () => {
  test('escapes every interpolated value, so hostile text is inert', () => {
    const name = '<script>alert(1)</script>" onmouseover="x\'`&';
    const out = html`<td title="${name}">${name}</td>`.value;
    expect(out).toBe(
      '<td title="&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x&#39;&#96;&amp;">&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x&#39;&#96;&amp;</td>',
    );
    expect(out).not.toMatch(/<script/);
  });

  test('nested templates are kept, arrays joined, empty values dropped', () => {
    expect(html`<ul>${['a<', 'b'].map((v) => html`<li>${v}</li>`)}</ul>${undefined}${null}${false}`.value).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
    expect(escapeHtml('plain')).toBe('plain');
  });

  test('links stay under /console with encoded parts; a javascript: value is only a parameter', () => {
    expect(consolePath('/console/runs', { bot: 'javascript:alert(1)', segment: '', status: undefined })).toBe('/console/runs?bot=javascript%3Aalert%281%29');
    expect(() => consolePath('javascript:alert(1)')).toThrow(/stay in the console/);
  });

  test('times carry the UTC value for the hover title', () => {
    expect(time('2026-01-02T03:04:05.678Z').value).toBe(
      '<time datetime="2026-01-02T03:04:05.678Z" title="2026-01-02T03:04:05.678Z">2026-01-02 03:04:05Z</time>',
    );
    expect(time(null).value).toContain('—');
  });
});
