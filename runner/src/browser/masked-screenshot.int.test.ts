import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import type { Browser, Frame, Page } from 'playwright-core';
import { TEST_CHROMIUM_PATH } from '@orderly/shared/testing';
import { launchChromium } from './launch';
import { MASK_RGB, maskedScreenshot, MaskedScreenshotOptions, Span } from './masked-screenshot';
import { decodePng, DecodedPng } from './png';

// Clearly fake PHI: no such member, person or birth date exists.
const MEMBER_ID = 'ZZT100200301';
const NAME = 'Testy McFake';
const DOB = '1900-01-15';
const DECLARED = [MEMBER_ID, NAME, DOB];

/** Declared values plus a member-id pattern, as the runner's redactor would combine them. */
function isSensitive(text: string): Span[] {
  const spans: Span[] = [];
  for (const value of DECLARED) {
    for (let at = text.indexOf(value); at >= 0; at = text.indexOf(value, at + 1)) spans.push({ start: at, end: at + value.length });
  }
  for (const m of text.matchAll(/ZZT\d{9}/g)) spans.push({ start: m.index, end: m.index + m[0].length });
  return spans;
}

const STYLE = `<style>
  body { margin: 8px; font: 16px/1.4 sans-serif; background: #fff; color: #333 }
  div, p, table { margin: 10px 0 }
  input { font: 16px sans-serif; color: #333 }
  td, th { border: 1px solid #ccc; padding: 3px }
  iframe { display: block; width: 380px; height: 70px; border: 1px solid #888; margin: 10px 0 }
</style>`;

function mainPage(crossOrigin: string, query: string): string {
  return `<!doctype html><html><head><meta charset="utf-8">${STYLE}</head><body>
<p id="clean-text">Coverage lookup for the selected plan</p>
<div><label>Member id <input id="member" value="${MEMBER_ID}"></label></div>
<div><label>Payer <input id="payer" class="payer" value="Acme Health Plan"></label></div>
<p id="para">Patient ${NAME} was seen today.</p>
<p id="split">Member <b>ZZT100</b>200301 is active</p>
<p>Also known as <span id="ws">Testy
      McFake</span> and <span id="nbsp">Testy&nbsp;McFake</span>.</p>
<div id="chart" class="phi-note">Chart note: stable</div>
<table><tr><th>Name</th><th>DOB</th></tr><tr><td id="cell-name">${NAME}</td><td id="cell-dob">${DOB}</td></tr></table>
<iframe id="same" src="/frame"></iframe>
<iframe id="cross" src="${crossOrigin}/frame${query}"></iframe>
</body></html>`;
}

const SAME_FRAME = `<!doctype html><html><head><meta charset="utf-8">${STYLE}</head><body style="margin:4px">
<p id="f-text" style="margin:0">Member ${MEMBER_ID} on file</p><input id="f-input" value="${NAME}"></body></html>`;

function crossFrame(hostile: boolean): string {
  // The hostile variant breaks the DOM API the masker measures with, in that frame only.
  const script = hostile ? `<script>Document.prototype.createRange = function () { throw new Error('no ranges here'); };</script>` : '';
  return `<!doctype html><html><head><meta charset="utf-8">${STYLE}${script}</head><body style="margin:4px">
<p id="x-text" style="margin:0">DOB ${DOB} confirmed</p><p id="x-clean" style="margin:0">Plan year 2024</p></body></html>`;
}

const BUSY_PAGE = `<!doctype html><html><head>${STYLE}</head><body><p id="clean-text">Clock</p><p id="t">0</p>
<script>setInterval(() => { document.getElementById('t').textContent = String(Date.now()); }, 1);</script></body></html>`;

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function html(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(body);
}

interface Box {
  what: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Offset of a child frame's viewport in page coordinates: its iframe's box plus border. */
async function frameOffset(frame: Frame): Promise<{ x: number; y: number }> {
  if (!frame.parentFrame()) return { x: 0, y: 0 };
  const element = await frame.frameElement();
  const box = await element.boundingBox();
  const border = await element.evaluate((el) => ({ x: (el as Element).clientLeft, y: (el as Element).clientTop }));
  if (!box) throw new Error('frame without a box');
  return { x: box.x + border.x, y: box.y + border.y };
}

/** Rects of every occurrence of the declared values in the frame's text nodes, in page coordinates. */
async function textBoxes(frame: Frame, values: string[]): Promise<Box[]> {
  const offset = await frameOffset(frame);
  const rects = await frame.evaluate((wanted) => {
    const out: { what: string; x: number; y: number; width: number; height: number }[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode() as Text | null; node; node = walker.nextNode() as Text | null) {
      for (const value of wanted) {
        for (let at = node.data.indexOf(value); at >= 0; at = node.data.indexOf(value, at + 1)) {
          const range = document.createRange();
          range.setStart(node, at);
          range.setEnd(node, at + value.length);
          for (const r of Array.from(range.getClientRects())) out.push({ what: value, x: r.x, y: r.y, width: r.width, height: r.height });
        }
      }
    }
    return out;
  }, values);
  return rects.map((r) => ({ ...r, what: `text "${r.what}" in ${frame.url()}`, x: r.x + offset.x, y: r.y + offset.y }));
}

async function elementBox(frame: Frame, selector: string): Promise<Box> {
  const box = await frame.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} has no box`);
  return { what: `${selector} in ${frame.url()}`, ...box };
}

/** Pixels of the box, rounded outwards to whole pixels, that are not the mask colour. */
function unmaskedPixels(image: DecodedPng, box: Box): number {
  let count = 0;
  const x1 = Math.min(Math.ceil(box.x + box.width), image.width);
  const y1 = Math.min(Math.ceil(box.y + box.height), image.height);
  for (let y = Math.max(Math.floor(box.y), 0); y < y1; y++) {
    for (let x = Math.max(Math.floor(box.x), 0); x < x1; x++) {
      const p = (y * image.width + x) * 4;
      const d = image.data;
      if (d[p] !== MASK_RGB[0] || d[p + 1] !== MASK_RGB[1] || d[p + 2] !== MASK_RGB[2] || d[p + 3] !== 255) count++;
    }
  }
  return count;
}

/** Pixels of the box that are exactly the mask colour (the page's own ink is #333, never black). */
function maskPixels(image: DecodedPng, box: Box): number {
  const area =
    (Math.min(Math.ceil(box.x + box.width), image.width) - Math.max(Math.floor(box.x), 0)) *
    (Math.min(Math.ceil(box.y + box.height), image.height) - Math.max(Math.floor(box.y), 0));
  return area - unmaskedPixels(image, box);
}

async function domSnapshot(page: Page): Promise<string[]> {
  return Promise.all(
    page.frames().map((frame) => frame.evaluate(() => document.documentElement.outerHTML + document.querySelectorAll('orderly-redaction').length)),
  );
}

describe('maskedScreenshot (real Chromium)', () => {
  let browser: Browser;
  let main: { server: Server; port: number };
  let other: { server: Server; port: number };
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    other = await serve((req, res) => html(res, crossFrame(req.url?.includes('hostile') ?? false)));
    // localhost vs 127.0.0.1: another site, so Chromium puts the iframe in its own process.
    const crossOrigin = `http://localhost:${other.port}`;
    main = await serve((req, res) => {
      if (req.url?.startsWith('/frame')) return html(res, SAME_FRAME);
      if (req.url?.startsWith('/busy')) return html(res, BUSY_PAGE);
      return html(res, mainPage(crossOrigin, req.url?.includes('hostile') ? '?hostile=1' : ''));
    });
    origin = `http://127.0.0.1:${main.port}`;
    browser = await launchChromium(TEST_CHROMIUM_PATH);
    page = await browser.newPage({ viewport: { width: 800, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([main, other].map(({ server }) => new Promise((resolve) => server.close(resolve))));
  });

  const options: MaskedScreenshotOptions = { phiSelectors: ['.phi-note'], allowFields: ['input.payer'], isSensitive };

  async function load(path: string): Promise<{ same: Frame; cross: Frame }> {
    await page.goto(origin + path, { waitUntil: 'load' });
    const same = page.frames().find((f) => f.url().endsWith('/frame'));
    const cross = page.frames().find((f) => f.url().includes(`localhost:${other.port}`));
    if (!same || !cross) throw new Error('frames did not load');
    return { same, cross };
  }

  it('masks PHI in fields, text, a table, a split value and both iframes; leaves the rest visible and the DOM as it was', async () => {
    const { same, cross } = await load('/');
    const before = await domSnapshot(page);

    const result = await maskedScreenshot(page, options);

    expect(result.failedClosed).toBe('none');
    expect(await domSnapshot(page)).toEqual(before);
    const image = decodePng(result.png);
    expect([image.width, image.height]).toEqual([800, 900]);

    const main = page.mainFrame();
    const phi: Box[] = [
      ...(await textBoxes(main, DECLARED)),
      ...(await textBoxes(same, DECLARED)),
      ...(await textBoxes(cross, DECLARED)),
      await elementBox(main, '#member'),
      await elementBox(main, '#chart'),
      await elementBox(main, '#split'), // the value crosses text nodes: the whole element goes
      await elementBox(main, '#ws'),
      await elementBox(main, '#nbsp'),
      await elementBox(same, '#f-input'),
    ];
    // Each place the page holds PHI was found by the test on its own, not just some of them.
    const where = phi.map((b) => b.what).join('\n');
    expect(phi.filter((b) => b.what.startsWith(`text "${NAME}"`)).length).toBeGreaterThanOrEqual(2); // paragraph + table cell
    expect(where).toContain(`text "${DOB}" in http://localhost:${other.port}/frame`);
    expect(where).toContain(`text "${MEMBER_ID}" in ${origin}/frame`);
    expect(result.maskedBoxes).toBeGreaterThanOrEqual(phi.length - 2);

    const leaks = phi.map((box) => ({ box, unmasked: unmaskedPixels(image, box) })).filter((l) => l.unmasked > 0);
    expect(leaks).toEqual([]);

    const clean = [await elementBox(main, '#clean-text'), await elementBox(main, '#payer'), await elementBox(cross, '#x-clean')];
    for (const box of clean) expect({ what: box.what, maskPixels: maskPixels(image, box) }).toEqual({ what: box.what, maskPixels: 0 });

    // The decoder agrees with the browser's own PNG decoding (sampled).
    const sample = await page.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext('2d');
      if (!ctx) throw new Error('no 2d context');
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, img.width, img.height).data;
      const out: number[] = [];
      for (let i = 0; i < data.length; i += 4 * 97) out.push(data[i]!, data[i + 1]!, data[i + 2]!);
      return out;
    }, result.png.toString('base64'));
    const mine: number[] = [];
    for (let i = 0; i < image.data.length; i += 4 * 97) mine.push(image.data[i]!, image.data[i + 1]!, image.data[i + 2]!);
    expect(mine).toEqual(sample);
  });

  it('masks an allow-listed field whose value is sensitive', async () => {
    await load('/');
    await page.fill('#payer', NAME);
    const result = await maskedScreenshot(page, options);
    expect(unmaskedPixels(decodePng(result.png), await elementBox(page.mainFrame(), '#payer'))).toBe(0);
  });

  it('fails closed to an all-mask image when isSensitive throws, and leaves no overlay behind', async () => {
    await load('/');
    const before = await domSnapshot(page);
    const result = await maskedScreenshot(page, {
      ...options,
      isSensitive: () => {
        throw new Error('detector crashed');
      },
    });
    expect(result.failedClosed).toBe('page');
    const image = decodePng(result.png);
    expect([image.width, image.height]).toEqual([800, 900]);
    expect(unmaskedPixels(image, { what: 'page', x: 0, y: 0, width: image.width, height: image.height })).toBe(0);
    expect(await domSnapshot(page)).toEqual(before);
  });

  it('fails closed to an all-mask image on an invalid PHI selector or a malformed span', async () => {
    await load('/');
    for (const broken of [
      { ...options, phiSelectors: ['[[not css'] },
      { ...options, isSensitive: (text: string) => (text.length > 3 ? [{ start: 2, end: text.length + 5 }] : []) },
    ]) {
      const result = await maskedScreenshot(page, broken);
      expect(result.failedClosed).toBe('page');
      const image = decodePng(result.png);
      expect(unmaskedPixels(image, { what: 'page', x: 0, y: 0, width: image.width, height: image.height })).toBe(0);
    }
  });

  it('covers a whole frame it cannot measure, and only that frame', async () => {
    const { cross } = await load('/?hostile=1');
    const before = await domSnapshot(page);
    const result = await maskedScreenshot(page, options);
    expect(result.failedClosed).toBe('frames');
    const image = decodePng(result.png);
    const iframe = await elementBox(page.mainFrame(), '#cross');
    expect(unmaskedPixels(image, iframe)).toBe(0);
    expect(cross.url()).toContain('hostile');
    expect(unmaskedPixels(image, await elementBox(page.mainFrame(), '#para'))).toBeGreaterThan(0); // not all masked…
    expect(maskPixels(image, await elementBox(page.mainFrame(), '#clean-text'))).toBe(0); // …and clean text visible
    for (const box of await textBoxes(page.mainFrame(), DECLARED)) expect(unmaskedPixels(image, box)).toBe(0);
    expect(await domSnapshot(page)).toEqual(before);
  });

  it('reaches into open shadow roots, above a modal dialog, and below the fold with fullPage', async () => {
    await page.setContent(`<!doctype html><html><head>${STYLE}</head><body>
<p id="clean-text">Coverage lookup</p><div id="host"></div>
<dialog id="dialog"><p id="in-dialog">Confirm ${NAME}?</p></dialog>
<div style="height:1500px"></div><p id="far">Born ${DOB}</p></body></html>`);
    await page.evaluate(
      ([memberId]) => {
        const root = document.getElementById('host')!.attachShadow({ mode: 'open' });
        root.innerHTML = `<p id="shadow-text">Member ${memberId}</p><input id="shadow-input" value="x">`;
        (document.getElementById('dialog') as HTMLDialogElement).showModal();
      },
      [MEMBER_ID],
    );
    const result = await maskedScreenshot(page, { ...options, fullPage: true });
    expect(result.failedClosed).toBe('none');
    const image = decodePng(result.png);
    expect(image.height).toBeGreaterThan(1500);
    const main = page.mainFrame();
    const boxes = [
      await elementBox(main, '#shadow-input'),
      ...(await main.evaluate(
        (wanted) =>
          [
            [document.getElementById('host')!.shadowRoot!.getElementById('shadow-text')!.firstChild!, wanted[0]!],
            [document.getElementById('in-dialog')!.firstChild!, wanted[1]!],
            [document.getElementById('far')!.firstChild!, wanted[2]!],
          ].flatMap(([node, value]) => {
            const text = node as Text;
            const range = document.createRange();
            range.setStart(text, text.data.indexOf(value as string));
            range.setEnd(text, text.data.indexOf(value as string) + (value as string).length);
            return Array.from(range.getClientRects(), (r) => ({
              what: value as string,
              x: r.x + window.scrollX,
              y: r.y + window.scrollY,
              width: r.width,
              height: r.height,
            }));
          }),
        [MEMBER_ID, NAME, DOB],
      )),
    ];
    expect(boxes).toHaveLength(4);
    expect(boxes.map((box) => ({ what: box.what, unmasked: unmaskedPixels(image, box) }))).toEqual(boxes.map((box) => ({ what: box.what, unmasked: 0 })));
    expect(maskPixels(image, await elementBox(main, '#clean-text'))).toBe(0);
  });

  it('masks every match on a large page (2,000+ elements, hundreds of boxes) with one overlay element, and leaves the rest visible', async () => {
    await page.setContent(`<!doctype html><html><head>${STYLE}</head><body><p id="clean-text">Claims</p><table id="claims"></table></body></html>`);
    await page.evaluate(
      ([memberId, name, dob]) => {
        const table = document.getElementById('claims')!;
        for (let r = 0; r < 400; r++) {
          const row = document.createElement('tr');
          const cells = [
            `CLM-${100000 + r}`,
            r % 3 === 0 ? `Seen with ${name} on ${dob}` : 'Office visit',
            `$${(r * 37) % 900}.00`,
            r % 7 === 0 ? `Member ${memberId}` : 'Paid',
            r % 11 === 0 ? name : 'Active',
          ];
          for (const text of cells) {
            const cell = document.createElement('td');
            cell.textContent = text;
            row.append(cell);
          }
          table.append(row);
        }
        // What the page itself sees of the masking while it happens.
        const seen = { added: 0 };
        (window as unknown as { seen: typeof seen }).seen = seen;
        new MutationObserver((records) => {
          for (const record of records) seen.added += record.addedNodes.length;
        }).observe(document, { subtree: true, childList: true });
      },
      [MEMBER_ID, NAME, DOB] as [string, string, string],
    );
    const main = page.mainFrame();
    expect(await main.evaluate(() => document.querySelectorAll('body *').length)).toBeGreaterThan(2000);
    const before = await domSnapshot(page);

    const result = await maskedScreenshot(page, { ...options, fullPage: true });

    expect(result.failedClosed).toBe('none');
    expect(await domSnapshot(page)).toEqual(before);
    // One element entered the page's DOM (the top-layer holder), not one per box.
    expect(await main.evaluate(() => (window as unknown as { seen: { added: number } }).seen.added)).toBe(1);
    const phi = await textBoxes(main, DECLARED);
    // 134 names and dates in the visit cells, 37 more names, 58 member ids.
    expect(phi.length).toBe(134 * 2 + 37 + 58);
    expect(result.maskedBoxes).toBeGreaterThanOrEqual(phi.length);
    const image = decodePng(result.png);
    expect(image.height).toBeGreaterThan(5000);
    const leaks = phi.map((box) => ({ what: box.what, y: box.y, unmasked: unmaskedPixels(image, box) })).filter((l) => l.unmasked > 0);
    expect(leaks).toEqual([]);
    // The clean cells of the last row stay visible, as does the heading.
    const clean = [
      await elementBox(main, '#clean-text'),
      await elementBox(main, '#claims tr:last-child td:nth-child(1)'),
      await elementBox(main, '#claims tr:last-child td:nth-child(3)'),
    ];
    for (const box of clean) expect({ what: box.what, maskPixels: maskPixels(image, box) }).toEqual({ what: box.what, maskPixels: 0 });
  });

  it('is not undone by page CSS aimed at SVG, paths or the overlay element', async () => {
    await page.setContent(`<!doctype html><html><head>${STYLE}<style>
  svg, path, svg *, orderly-redaction, orderly-redaction * { display: none !important; fill: transparent !important; fill-rule: evenodd !important; opacity: 0 !important; visibility: hidden !important; transform: scale(0) !important; translate: 500px 500px !important; d: path('M0 0') !important; }
  * { fill-opacity: 0 !important; }
</style></head><body><p id="clean-text">Coverage lookup</p><p id="para">Patient ${NAME}, born ${DOB}</p><div id="chart" class="phi-note">Chart note: ${NAME}</div></body></html>`);
    const main = page.mainFrame();
    const result = await maskedScreenshot(page, options);
    expect(result.failedClosed).toBe('none');
    const image = decodePng(result.png);
    const boxes = [...(await textBoxes(main, DECLARED)), await elementBox(main, '#chart')];
    expect(boxes).toHaveLength(4);
    expect(boxes.map((box) => ({ what: box.what, unmasked: unmaskedPixels(image, box) }))).toEqual(boxes.map((box) => ({ what: box.what, unmasked: 0 })));
    expect(maskPixels(image, await elementBox(main, '#clean-text'))).toBe(0);
  });

  it('masks the whole page when the page keeps changing under the capture', async () => {
    await page.goto(`${origin}/busy`);
    const result = await maskedScreenshot(page, options);
    expect(result.failedClosed).toBe('page');
    expect(await page.evaluate(() => document.querySelectorAll('orderly-redaction').length)).toBe(0);
  });
});
