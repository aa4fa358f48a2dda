import { randomBytes } from 'node:crypto';
import type { ElementHandle, Frame, Page } from 'playwright-core';
import { encodeSolidPng } from './png';

/**
 * Redacted screenshots (invariant 4): PHI is covered on the bot host, before the image exists
 * anywhere else. What is covered, in every frame of the page (cross-origin ones included):
 * - every form field (input, textarea, select, contenteditable, ARIA text boxes) unless it matches
 *   an allow-listed selector and its value is not sensitive;
 * - every element matching a manifest PHI selector;
 * - every text span `isSensitive` reports, per text node (the span's own rects) and per element's
 *   rendered text (a span that crosses nodes covers its lowest common element as well).
 *
 * Why overlays and not Playwright's `mask` option: `mask` takes locators only and cannot express
 * the rects of a text span; one pass per frame collects everything and draws it.
 *
 * The overlay lives in each frame's own top layer (a manual popover), so nothing the page paints
 * (z-index, modal dialogs, filters on <html>) can sit above it, and each frame clips it exactly
 * as it clips its content. It is one element per frame however many boxes there are: an SVG with a
 * single path holding every box, in a closed shadow root (page CSS cannot reach it), placed and
 * checked with one layout. A frame's agent measures everything before it writes anything, and
 * sends its texts and receives its plan as one JSON string each: on a page of thousands of
 * elements and hundreds of boxes, per-box elements and Playwright's per-value serialisation cost
 * several times the screenshot itself. A frame that cannot be collected or drawn is covered whole by its parent;
 * when the main frame fails, the result is a solid mask-coloured image and no screenshot is taken.
 *
 * Between measuring and the screenshot the page keeps running. A MutationObserver and a
 * re-measurement after the capture detect any change or movement; such a capture is thrown away and
 * retried, and after ATTEMPTS tries the whole page is masked.
 *
 * The page function below is serialised with Function#toString: it must not reference anything
 * outside itself (coverage instrumentation would break it). esbuild-based loaders (tsx) wrap named
 * inner functions in `__name(…)`; the source defines it, so the agent also runs under them.
 */

/** The mask colour, opaque black. */
export const MASK_RGB: readonly [number, number, number] = [0, 0, 0];
const MASK_CSS = 'rgb(0,0,0)';
/** Padding around every box: glyph overhangs, anti-aliased edges, sub-pixel layout. */
const PAD_PX = 2;
const ATTEMPTS = 3;
const STEP_TIMEOUT_MS = 5_000;
const SCREENSHOT_TIMEOUT_MS = 15_000;
/** A page agent left behind (a timed-out step) removes its overlays by itself after this long. */
const AGENT_LIFETIME_MS = 30_000;
/** Form fields, masked unless allow-listed. Hidden inputs never render (UA `display:none !important`). */
export const FIELD_SELECTOR = [
  'input:not([type="hidden" i])',
  'textarea',
  'select',
  '[contenteditable]:not([contenteditable="false" i])',
  '[role="textbox"]',
  '[role="searchbox"]',
  '[role="combobox"]',
  '[role="spinbutton"]',
].join(', ');

export interface Span {
  start: number;
  end: number;
}

export interface MaskedScreenshotOptions {
  /** CSS selectors from the manifest: matching elements are always masked. */
  phiSelectors: string[];
  /** CSS selectors of form fields that may stay visible (their value is still checked). */
  allowFields: string[];
  /** Spans to mask within a text; the caller combines declared values, secrets and detectors. */
  isSensitive: (text: string) => Span[];
  fullPage?: boolean;
}

export interface MaskedScreenshot {
  png: Buffer;
  /** Opaque boxes drawn (1 when the whole page was masked). */
  maskedBoxes: number;
  /** 'frames': some frames were masked whole; 'page': the image is all mask colour. */
  failedClosed: 'none' | 'frames' | 'page';
}

/** Takes a screenshot of `page` with PHI covered by opaque boxes; never returns an unmasked image. */
export async function maskedScreenshot(page: Page, options: MaskedScreenshotOptions): Promise<MaskedScreenshot> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let result: MaskedScreenshot | 'changed';
    try {
      result = await attemptOnce(page, options);
    } catch {
      // Nothing about the failure is reported: page errors can quote page text.
      break;
    }
    if (result !== 'changed') return result;
  }
  return { png: await wholePageMask(page), maskedBoxes: 1, failedClosed: 'page' };
}

// ---------------------------------------------------------------------------------------------
// Node side

interface AgentOptions {
  phiSelectors: string[];
  allowFields: string[];
  fieldSelector: string;
  pad: number;
  color: string;
  lifetimeMs: number;
}

/** What a frame's agent hands out: the page's own text, never anything of the caller's. */
interface Collected {
  texts: string[];
  /** Indices of text nodes preceded by a block boundary (rendered as a line break). */
  breaks: number[];
  /** Flat [first, end) ranges of text nodes: elements whose subtree holds two or more. */
  groups: number[];
  /** Value (and placeholder, selected option text) of each allow-listed field. */
  allowedValues: string[];
}

interface Plan {
  /** Flat triples: text node, start, end. */
  nodeSpans: number[];
  /** Flat 5-tuples: first text node, start, last text node, end, group. */
  crossSpans: number[];
  /** Allow-listed fields whose value is sensitive. */
  allowedMasked: number[];
}

interface DrawArg extends Plan {
  /** Frame elements of child frames that failed: masked whole. */
  covers: Element[];
}

interface PageAgent {
  /** `plan` is a Plan as JSON: one string crosses the protocol, not thousands of serialised numbers. */
  draw(token: string, plan: string, covers: Element[]): { stale: boolean; boxes: number };
  cleanup(token: string): { clean: boolean };
}

async function attemptOnce(page: Page, options: MaskedScreenshotOptions): Promise<MaskedScreenshot | 'changed'> {
  const agentOptions: AgentOptions = {
    phiSelectors: options.phiSelectors,
    allowFields: options.allowFields,
    fieldSelector: FIELD_SELECTOR,
    pad: PAD_PX,
    color: MASK_CSS,
    lifetimeMs: AGENT_LIFETIME_MS,
  };
  // The agent stays in each frame between steps under a random name (a handle would cost two
  // more round trips per frame); its methods refuse any caller without the token, so page
  // script that finds it cannot take the overlays down early.
  const key = `__orderlyMask${randomBytes(12).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const main = page.mainFrame();
  const frames = page.frames();
  const failed = new Set<Frame>();
  let released = false;
  const release = async (): Promise<boolean[]> => {
    released = true;
    return Promise.all(
      frames.map(async (frame) => {
        const clean = await withTimeout(
          frame.evaluate(
            ([k, t]) => {
              const agent = (window as unknown as Record<string, PageAgent | undefined>)[k];
              return agent ? agent.cleanup(t).clean : null;
            },
            [key, token] as const,
          ),
        ).catch(() => false);
        // A failed frame is covered by its parent: its own changes do not matter. A frame that
        // lost its agent (navigated) is not clean.
        return clean === true || failed.has(frame);
      }),
    );
  };
  try {
    // 1. Collect, all frames at once: one round trip each.
    const collected = new Map<Frame, Collected>();
    await Promise.all(
      frames.map(async (frame) => {
        try {
          const expression = `${AGENT_SOURCE}(${JSON.stringify(agentOptions)}, ${JSON.stringify(key)}, ${JSON.stringify(token)})`;
          // The agent answers with JSON: Playwright's own serialisation of thousands of strings
          // and numbers costs far more than JSON.stringify and JSON.parse.
          collected.set(frame, parseCollected(await withTimeout(frame.evaluate<unknown>(expression))));
        } catch {
          failed.add(frame);
        }
      }),
    );
    if (failed.has(main)) throw new Error('main frame could not be collected');

    // 2. Match on this side: the caller's values and detectors never enter the page. An
    // isSensitive that throws fails the whole page (it would fail for every frame).
    const matcher = memoMatcher(options.isSensitive);
    const plans = new Map<Frame, Plan>();
    for (const [frame, data] of collected) plans.set(frame, planFrame(data, matcher));

    // 3. Draw, deepest frames first, so a parent can cover a child that failed.
    const depthOf = (frame: Frame): number => {
      let depth = 0;
      for (let parent = frame.parentFrame(); parent; parent = parent.parentFrame()) depth++;
      return depth;
    };
    const maxDepth = Math.max(0, ...frames.map(depthOf));
    let boxes = 0;
    for (let depth = maxDepth; depth >= 0; depth--) {
      const level = frames.filter((frame) => depthOf(frame) === depth && !failed.has(frame));
      const results = await Promise.all(
        level.map(async (frame) => {
          try {
            const covers = await Promise.all(
              frame
                .childFrames()
                .filter((child) => failed.has(child))
                .map((child) => withTimeout(child.frameElement())),
            );
            const plan = plans.get(frame);
            if (!plan) throw new Error('frame without a plan');
            return await withTimeout(
              frame.evaluate(
                ([k, t, json, handles]) => {
                  const agent = (window as unknown as Record<string, PageAgent | undefined>)[k];
                  if (!agent) throw new Error('agent gone');
                  return agent.draw(t, json, handles as unknown as Element[]);
                },
                [key, token, JSON.stringify(plan), covers] as [string, string, string, ElementHandle[]],
              ),
            );
          } catch {
            failed.add(frame);
            return { stale: false, boxes: 0 };
          }
        }),
      );
      if (results.some((r) => r.stale)) return 'changed';
      for (const r of results) boxes += r.boxes;
    }
    if (failed.has(main)) throw new Error('main frame could not be masked');

    // 4. Capture. caret 'initial' and animations 'allow' keep Playwright from touching the DOM,
    // so any mutation seen until the release is the page's own.
    const png = await page.screenshot({ fullPage: options.fullPage ?? false, caret: 'initial', animations: 'allow', timeout: SCREENSHOT_TIMEOUT_MS });

    // 5. Remove the overlays; a frame that changed or moved while we looked voids the capture.
    const verdicts = await release();
    if (!verdicts.every(Boolean)) return 'changed';
    return { png, maskedBoxes: boxes, failedClosed: failed.size > 0 ? 'frames' : 'none' };
  } finally {
    if (!released) await release();
  }
}

/** The agent's JSON answer, checked: anything malformed fails the frame (it is then covered whole). */
function parseCollected(answer: unknown): Collected {
  if (typeof answer !== 'string') throw new Error('agent answered without JSON');
  const data = JSON.parse(answer) as Partial<Collected> | null;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const integers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0);
  if (!data || !strings(data.texts) || !integers(data.breaks) || !integers(data.groups) || data.groups.length % 2 !== 0 || !strings(data.allowedValues))
    throw new Error('malformed agent answer');
  const count = data.texts.length;
  for (let i = 0; i < data.groups.length; i += 2)
    if (!(data.groups[i]! < data.groups[i + 1]! && data.groups[i + 1]! <= count)) throw new Error('malformed agent answer');
  return data as Collected;
}

function withTimeout<T>(promise: Promise<T>, ms = STEP_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('masked screenshot step timed out')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The fail-closed image: all mask colour, the viewport's size, made without the page. */
async function wholePageMask(page: Page): Promise<Buffer> {
  let size = page.viewportSize();
  if (!size) {
    size = await withTimeout(
      page.evaluate(() => ({ width: window.innerWidth, height: window.innerHeight })),
      2_000,
    ).catch(() => null);
  }
  const width = Math.min(Math.max(Math.round(size?.width ?? 1280), 1), 16_384);
  const height = Math.min(Math.max(Math.round(size?.height ?? 720), 1), 16_384);
  return encodeSolidPng(width, height, MASK_RGB);
}

type Matcher = (text: string) => Span[];

/**
 * Wraps isSensitive: validates its spans (a malformed answer throws, failing closed), also matches
 * the whitespace-collapsed text as the browser renders it ("Testy\n   McFake", "&nbsp;"), and
 * memoises by text.
 */
function memoMatcher(isSensitive: (text: string) => Span[]): Matcher {
  const memo = new Map<string, Span[]>();
  const checked = (text: string): Span[] => {
    const spans: unknown = isSensitive(text);
    if (!Array.isArray(spans)) throw new Error('isSensitive must return an array');
    const out: Span[] = [];
    for (const span of spans as Partial<Span>[]) {
      const { start, end } = span ?? {};
      if (!Number.isInteger(start) || !Number.isInteger(end) || start! < 0 || end! > text.length || start! > end!)
        throw new Error('isSensitive returned a span outside the text');
      if (end! > start!) out.push({ start: start!, end: end! });
    }
    return out;
  };
  return (text) => {
    const known = memo.get(text);
    if (known) return known;
    const spans = checked(text);
    const collapsed = collapseWhitespace(text);
    if (collapsed) for (const s of checked(collapsed.text)) spans.push({ start: collapsed.map[s.start]!, end: collapsed.map[s.end]! });
    memo.set(text, spans);
    return spans;
  };
}

/** CSS white-space collapsing; `map[i]` is the raw offset of collapsed char i (map[len] = raw length). */
function collapseWhitespace(text: string): { text: string; map: number[] } | null {
  if (!/[\t\n\r\f\u00a0]| {2}/.test(text)) return null;
  const out: string[] = [];
  const map: number[] = [];
  let inRun = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const space = c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\u00a0';
    if (space && inRun) continue;
    inRun = space;
    out.push(space ? ' ' : c);
    map.push(i);
  }
  map.push(text.length);
  return { text: out.join(''), map };
}

/** Turns a frame's text into spans to draw: per text node, then per element's rendered text. */
function planFrame(data: Collected, match: Matcher): Plan {
  const nodeSpans: number[] = [];
  const crossSpans: number[] = [];
  const seen = new Set<string>();
  const addNode = (node: number, start: number, end: number): void => {
    const key = `${node}:${start}:${end}`;
    if (end <= start || seen.has(key)) return;
    seen.add(key);
    nodeSpans.push(node, start, end);
  };
  const { texts } = data;
  texts.forEach((text, i) => {
    if (!/\S/.test(text)) return;
    for (const span of match(text)) addNode(i, span.start, span.end);
  });

  // An element's text: its text nodes joined, with a line break at block boundaries (roughly
  // innerText). It finds a value split by inline markup: `Member <b>ZZT100</b>200301`.
  const breaks = new Set(data.breaks);
  const groupCount = data.groups.length / 2;
  for (let g = 0; g < groupCount; g++) {
    const first = data.groups[2 * g]!;
    const end = data.groups[2 * g + 1]!;
    const parts: string[] = [];
    const starts: number[] = [];
    let offset = 0;
    for (let i = first; i < end; i++) {
      if (i > first && breaks.has(i)) {
        parts.push('\n');
        offset += 1;
      }
      starts.push(offset);
      parts.push(texts[i]!);
      offset += texts[i]!.length;
    }
    const joined = parts.join('');
    if (!/\S/.test(joined)) continue;
    for (const span of match(joined)) {
      const a = lastAtOrBefore(starts, span.start);
      const b = lastAtOrBefore(starts, span.end - 1);
      const startIn = Math.min(span.start - starts[a]!, texts[first + a]!.length);
      const endIn = Math.min(span.end - starts[b]!, texts[first + b]!.length);
      if (a === b) addNode(first + a, startIn, endIn);
      else {
        const key = `${first + a}:${startIn}-${first + b}:${endIn}`;
        if (seen.has(key)) continue;
        seen.add(key);
        crossSpans.push(first + a, startIn, first + b, endIn, g);
      }
    }
  }
  const allowedMasked: number[] = [];
  data.allowedValues.forEach((value, i) => {
    if (/\S/.test(value) && match(value).length > 0) allowedMasked.push(i);
  });
  return { nodeSpans, crossSpans, allowedMasked };
}

/** Index of the last entry of the ascending `starts` that is ≤ `value` (0 when none is). */
function lastAtOrBefore(starts: number[], value: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Page side: runs inside each frame (main world), serialised. Self-contained by necessity.

async function installAgent(opts: AgentOptions, key: string, token: string): Promise<string> {
  const doc = document;
  // Layout can still change while web fonts load; wait a bounded time (re-measuring catches the rest).
  await Promise.race([doc.fonts.ready, new Promise((resolve) => setTimeout(resolve, 2_000))]);

  const BLOCK = new Set(
    'address article aside blockquote br caption dd details dialog div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr legend li main nav ol option p pre section summary table tbody td tfoot th thead tr ul'.split(
      ' ',
    ),
  );
  // Never rendered unless the page styles them visible (checked): `head` holds the title, which
  // would otherwise add a wrapper group (`html`) around the whole body's text, scanned again.
  const SKIP = new Set(['script', 'style', 'noscript', 'template', 'head']);
  const nodes: CharacterData[] = [];
  const texts: string[] = [];
  const breaks: number[] = [];
  const groups: number[] = [];
  const groupElements: Element[] = [];
  const roots: (Document | ShadowRoot)[] = [doc];
  let pendingBreak = false;
  const blank = (text: string): boolean => !/\S/.test(text);
  const walk = (parent: Node): void => {
    for (let child = parent.firstChild; child; child = child.nextSibling) {
      const type = child.nodeType;
      if (type === 3 || type === 4) {
        if (pendingBreak) breaks.push(texts.length);
        pendingBreak = false;
        nodes.push(child as CharacterData);
        texts.push((child as CharacterData).data);
      } else if (type === 1) {
        const el = child as Element;
        const name = el.localName;
        if (SKIP.has(name) && getComputedStyle(el).display === 'none') continue;
        const block = BLOCK.has(name);
        if (block) pendingBreak = true;
        const first = texts.length;
        const shadow = el.shadowRoot;
        if (shadow) {
          roots.push(shadow);
          walk(shadow);
        }
        walk(el);
        if (block) pendingBreak = true;
        // Whitespace-only nodes at a group's edges (source indentation) render nothing and hold
        // nothing: without them a wrapper `<div>\n  <table>…</table>\n</div>` has its table's
        // text nodes, and its text (the table's, scanned once already) is not scanned again.
        let from = first;
        let end = texts.length;
        while (from < end && blank(texts[from]!)) from++;
        while (end > from && blank(texts[end - 1]!)) end--;
        const n = groups.length;
        // Post-order: a wrapper with the same text nodes as its last group adds nothing.
        if (end - from >= 2 && !(groups[n - 2] === from && groups[n - 1] === end)) {
          groups.push(from, end);
          groupElements.push(el);
        }
      }
    }
  };
  walk(doc);

  const valueOf = (el: Element): string => {
    const parts: string[] = [];
    const value = (el as { value?: unknown }).value;
    if (typeof value === 'string') parts.push(value);
    const placeholder = el.getAttribute('placeholder');
    if (placeholder) parts.push(placeholder);
    const selected = (el as { selectedOptions?: ArrayLike<{ text: string }> }).selectedOptions;
    if (selected) for (const option of Array.from(selected)) parts.push(option.text);
    return parts.join('\n');
  };
  const masked = new Set<Element>();
  const allowed: Element[] = [];
  const allowedValues: string[] = [];
  for (const root of roots) {
    for (const el of Array.from(root.querySelectorAll(opts.fieldSelector))) {
      if (opts.allowFields.some((selector) => el.matches(selector))) {
        allowed.push(el);
        allowedValues.push(valueOf(el));
      } else masked.add(el);
    }
    for (const selector of opts.phiSelectors) for (const el of Array.from(root.querySelectorAll(selector))) masked.add(el);
  }

  // Anything the page changes from here until the release voids the capture.
  let changed = false;
  const observer = new MutationObserver(() => {
    changed = true;
  });
  for (const root of roots) observer.observe(root, { subtree: true, childList: true, attributes: true, characterData: true });
  const isChanged = (): boolean => changed || observer.takeRecords().length > 0;

  const paused: Animation[] = [];
  let container: HTMLElement | null = null;
  let targets: (() => DOMRect[])[] = [];
  let measured: number[][] = [];
  let verdict: boolean | null = null;
  const nonEmpty = (r: DOMRect): boolean => r.width > 0 && r.height > 0;
  // Document coordinates: overlays are absolutely positioned, so they follow a document scroll.
  const inDocument = (rects: DOMRect[]): number[] => rects.flatMap((r) => [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]);

  const removeAll = (): void => {
    observer.disconnect();
    container?.remove();
    container = null;
    for (const animation of paused.splice(0)) {
      try {
        animation.play();
      } catch {
        // an animation the page cancelled meanwhile
      }
    }
  };
  const cleanup = (): { clean: boolean } => {
    delete (window as unknown as Record<string, unknown>)[key];
    if (verdict !== null) return { clean: verdict };
    let clean = !isChanged();
    try {
      for (let i = 0; clean && i < targets.length; i++) {
        const now = inDocument(targets[i]!().filter(nonEmpty));
        const before = measured[i]!;
        clean = now.length === before.length && now.every((v, j) => Math.abs(v - before[j]!) <= 0.5);
      }
      if (clean && container) clean = container.isConnected && container.matches(':popover-open');
      if (clean) clean = allowed.every((el, i) => valueOf(el) === allowedValues[i]);
    } catch {
      clean = false;
    } finally {
      clearTimeout(timer);
      removeAll();
    }
    verdict = clean;
    return { clean };
  };
  const timer = setTimeout(cleanup, opts.lifetimeMs);

  const draw = (arg: DrawArg): { stale: boolean; boxes: number } => {
    if (verdict !== null) throw new Error('agent already released');
    if (isChanged()) return { stale: true, boxes: 0 };
    try {
      // Running animations would move boxes between measuring and capture.
      for (const animation of doc.getAnimations()) {
        if (animation.playState === 'running') {
          animation.pause();
          paused.push(animation);
        }
      }
      const range = doc.createRange();
      const list: (() => DOMRect[])[] = [];
      const elementRects = (el: Element) => (): DOMRect[] => {
        // The box, and the box of its contents: text can overflow a fixed-size cell, and an
        // element with `display: contents` has no box of its own.
        const own = el.getBoundingClientRect();
        range.selectNodeContents(el);
        return [own, range.getBoundingClientRect()];
      };
      const s = arg.nodeSpans;
      for (let i = 0; i + 2 < s.length; i += 3) {
        const node = nodes[s[i]!]!;
        const start = s[i + 1]!;
        const end = s[i + 2]!;
        list.push(() => {
          const length = node.data.length;
          range.setStart(node, Math.min(start, length));
          range.setEnd(node, Math.min(end, length));
          return Array.from(range.getClientRects());
        });
      }
      const c = arg.crossSpans;
      for (let i = 0; i + 4 < c.length; i += 5) {
        const a = nodes[c[i]!]!;
        const startIn = c[i + 1]!;
        const b = nodes[c[i + 2]!]!;
        const endIn = c[i + 3]!;
        let owner: Element = groupElements[c[i + 4]!]!;
        // A span across nodes masks the lowest element holding all of it (fail closed), and its rects.
        if (a.getRootNode() === b.getRootNode() && a.compareDocumentPosition(b) & 4) {
          list.push(() => {
            range.setStart(a, Math.min(startIn, a.data.length));
            range.setEnd(b, Math.min(endIn, b.data.length));
            return Array.from(range.getClientRects());
          });
          range.setStart(a, 0);
          range.setEnd(b, 0);
          const common = range.commonAncestorContainer;
          const lowest = common.nodeType === 1 ? (common as Element) : common.parentElement;
          if (lowest) owner = lowest;
        }
        list.push(elementRects(owner));
      }
      for (const el of masked) list.push(elementRects(el));
      for (const index of arg.allowedMasked) list.push(elementRects(allowed[index]!));
      for (const el of arg.covers) list.push(elementRects(el));

      const rects = list.map((measure) => measure().filter(nonEmpty));
      targets = list;
      measured = rects.map(inDocument);
      const boxes = rects.flat();
      if (boxes.length === 0) return { stale: false, boxes: 0 };

      // The top layer paints above everything the page has, modal dialogs included, and ignores
      // filters and opacity on <html>. Inline !important beats every author rule.
      const holder = doc.createElement('orderly-redaction');
      holder.setAttribute('popover', 'manual');
      holder.style.cssText =
        'position:absolute!important;inset:auto!important;left:0!important;top:0!important;width:0!important;height:0!important;margin:0!important;padding:0!important;border:0!important;overflow:visible!important;background:transparent!important;display:block!important;visibility:visible!important;opacity:1!important;filter:none!important;transform:none!important;zoom:1!important;pointer-events:none!important;';
      container = holder;
      (doc.documentElement ?? doc).appendChild(holder);
      holder.showPopover();
      if (!holder.matches(':popover-open')) throw new Error('overlay container is not in the top layer');
      const origin = holder.getBoundingClientRect();
      // All boxes are one SVG path (one element, one layout, one paint, one removal), in a closed
      // shadow root that no page selector reaches. Edges are rounded outwards to 1/8 px.
      const pad = opts.pad;
      const out = (v: number): number => Math.floor(v * 8) / 8;
      const up = (v: number): number => Math.ceil(v * 8) / 8;
      let minX = Infinity;
      let minY = Infinity;
      let maxX = -Infinity;
      let maxY = -Infinity;
      const edges = boxes.map((r) => {
        const e = [out(r.left - pad - origin.left), out(r.top - pad - origin.top), up(r.right + pad - origin.left), up(r.bottom + pad - origin.top)] as const;
        minX = Math.min(minX, e[0]);
        minY = Math.min(minY, e[1]);
        maxX = Math.max(maxX, e[2]);
        maxY = Math.max(maxY, e[3]);
        return e;
      });
      // Every subpath clockwise under the nonzero rule: overlapping boxes add up, never cancel out.
      const d = edges.map(([x0, y0, x1, y1]) => `M${x0 - minX} ${y0 - minY}H${x1 - minX}V${y1 - minY}H${x0 - minX}Z`).join('');
      const svgNs = 'http://www.w3.org/2000/svg';
      const svg = doc.createElementNS(svgNs, 'svg');
      const path = doc.createElementNS(svgNs, 'path');
      const width = maxX - minX;
      const height = maxY - minY;
      svg.setAttribute('width', String(width));
      svg.setAttribute('height', String(height));
      svg.style.cssText = `position:absolute!important;display:block!important;box-sizing:content-box!important;margin:0!important;padding:0!important;border:0!important;left:${minX}px!important;top:${minY}px!important;width:${width}px!important;height:${height}px!important;min-width:0!important;min-height:0!important;max-width:none!important;max-height:none!important;overflow:visible!important;background:transparent!important;opacity:1!important;visibility:visible!important;filter:none!important;transform:none!important;translate:none!important;rotate:none!important;scale:none!important;zoom:1!important;mix-blend-mode:normal!important;clip-path:none!important;mask:none!important;forced-color-adjust:none!important;pointer-events:none!important;`;
      path.setAttribute('d', d);
      path.style.cssText = `display:inline!important;fill:${opts.color}!important;fill-opacity:1!important;fill-rule:nonzero!important;stroke:none!important;opacity:1!important;visibility:visible!important;filter:none!important;transform:none!important;translate:none!important;rotate:none!important;scale:none!important;clip-path:none!important;mask:none!important;marker:none!important;mix-blend-mode:normal!important;shape-rendering:crispEdges!important;pointer-events:none!important;`;
      svg.appendChild(path);
      holder.attachShadow({ mode: 'closed' }).appendChild(svg);
      // Verify where the path landed (zoom, transforms, odd containing blocks): the SVG's box and
      // the path's geometry both span exactly the boxes, with no transform in between.
      const near = (got: DOMRect): boolean =>
        Math.abs(got.left - origin.left - minX) <= 0.5 &&
        Math.abs(got.top - origin.top - minY) <= 0.5 &&
        Math.abs(got.width - width) <= 0.5 &&
        Math.abs(got.height - height) <= 0.5;
      const ctm = path.getCTM();
      if (
        !near(svg.getBoundingClientRect()) ||
        !near(path.getBoundingClientRect()) ||
        !ctm ||
        ctm.a !== 1 ||
        ctm.b !== 0 ||
        ctm.c !== 0 ||
        ctm.d !== 1 ||
        ctm.e !== 0 ||
        ctm.f !== 0
      ) {
        throw new Error('overlay misplaced');
      }
      observer.takeRecords(); // our own insertion
      return { stale: false, boxes: boxes.length };
    } catch (error) {
      verdict = false;
      clearTimeout(timer);
      removeAll();
      throw error;
    }
  };

  const agent: PageAgent = {
    draw: (t, plan, covers) => {
      if (t !== token) throw new Error('wrong token');
      return draw({ ...(JSON.parse(plan) as Plan), covers });
    },
    cleanup: (t) => {
      if (t !== token) throw new Error('wrong token');
      return cleanup();
    },
  };
  Object.defineProperty(window, key, { value: agent, configurable: true, enumerable: false, writable: false });
  return JSON.stringify({ texts, breaks, groups, allowedValues });
}

/** The agent's source, with the `__name` esbuild's keepNames would otherwise leave undefined. */
const AGENT_SOURCE = `(() => { const __name = (target) => target; return (${installAgent.toString()}); })()`;
