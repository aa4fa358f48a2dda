import type { ServerResponse } from 'node:http';
import type { Db } from '../db/db';
import { overview, Overview } from './queries';

/** A run detail page following its run's log: the last line it holds, and the run's status it showed. */
export interface Follow {
  runId: string;
  attempt: number;
  seq: number;
  status?: string;
}

interface Subscriber {
  res: ServerResponse;
  sessionHash: string;
  follow?: Follow | undefined;
  /** The segments whose counts and runs this session may see (role bindings). */
  segments: 'all' | ReadonlySet<string>;
}

type LogRow = { run_id: string; attempt: number; seq: number; at: Date; level: string; source: string; msg: string };
const after = (a: { attempt: number; seq: number }, b: { attempt: number; seq: number }) => a.attempt > b.attempt || (a.attempt === b.attempt && a.seq > b.seq);

/**
 * Server-side fan-out of the live overview: one poll of the database per tick, whatever the number
 * of open consoles, and only while at least one is open. Each session holds at most one stream (a
 * new one replaces the old), and a stream whose session ended is told so and closed.
 */
export class LiveHub {
  private readonly subscribers = new Map<string, Subscriber>();
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private seq = 0;
  private ticking = false;
  private lastSessionCheck = 0;
  /** Database polls since start (the bench and tests read it: it must not scale with subscribers). */
  polls = 0;

  constructor(
    private readonly deps: {
      db: Db;
      segments: readonly string[];
      intervalMs: number;
      sessionAlive: (sessionHash: string) => Promise<boolean>;
      log: { warn(obj: object, msg: string): void };
    },
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Adds a stream for a session, replacing that session's previous stream. `follow`: the stream
   * also carries the run's new (redacted) log lines and status, polled once per run per tick.
   */
  subscribe(sessionHash: string, res: ServerResponse, follow?: Follow, segments: 'all' | ReadonlySet<string> = 'all'): void {
    this.subscribers.get(sessionHash)?.res.end();
    const sub: Subscriber = { res, sessionHash, follow, segments };
    this.subscribers.set(sessionHash, sub);
    res.on('close', () => {
      if (this.subscribers.get(sessionHash) === sub) this.subscribers.delete(sessionHash);
      if (this.subscribers.size === 0) this.stop();
    });
    if (this.lastValues) res.write(this.message(sub));
    this.start();
    void this.tick();
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.subscribers.size === 0) return;
    this.ticking = true;
    try {
      this.polls += 1;
      const snapshot = await overview(this.deps.db, this.deps.segments);
      const body = JSON.stringify(liveValues(snapshot));
      if (body !== this.lastBody) {
        this.lastBody = body;
        this.seq += 1;
        this.lastValues = liveValues(snapshot);
        this.last = `event: overview\nid: ${this.seq}\ndata: ${JSON.stringify({ seq: this.seq, ...this.lastValues })}\n\n`;
        for (const sub of this.subscribers.values()) sub.res.write(this.message(sub));
      } else {
        for (const sub of this.subscribers.values()) sub.res.write(': keep-alive\n\n');
      }
      await this.followLogs();
      // Sessions end while a stream is open (idle logoff, sign-out elsewhere): checked every 15 s,
      // without touching the session's idle clock.
      if (Date.now() - this.lastSessionCheck > 15_000) {
        this.lastSessionCheck = Date.now();
        for (const sub of [...this.subscribers.values()]) {
          if (!(await this.deps.sessionAlive(sub.sessionHash))) {
            sub.res.write('event: expired\ndata: {}\n\n');
            sub.res.end();
          }
        }
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'console live overview poll failed');
    } finally {
      this.ticking = false;
    }
  }

  private lastBody = '';
  private lastValues: ReturnType<typeof liveValues> | undefined;

  /** The latest overview event, cut to the subscriber's segments (one query for everyone; the cut is per stream). */
  private message(sub: Subscriber): string {
    const allowed = sub.segments;
    if (allowed === 'all' || !this.lastValues) return this.last;
    const values = Object.fromEntries(Object.entries(this.lastValues.values).filter(([k]) => allowed.has(k.slice(0, k.indexOf('.')))));
    const recent = this.lastValues.recent.filter((r) => allowed.has(r.segment));
    return `event: overview\nid: ${this.seq}\ndata: ${JSON.stringify({ seq: this.seq, values, recent })}\n\n`;
  }

  /** One query per followed run (from the oldest cursor of its followers), whatever the number of followers. */
  private async followLogs(): Promise<void> {
    const followers = [...this.subscribers.values()].filter((s) => s.follow);
    if (followers.length === 0) return;
    const runIds = [...new Set(followers.map((s) => s.follow!.runId))];
    const statuses = new Map(
      (await this.deps.db.query<{ id: string; status: string }>('SELECT id, status FROM runs WHERE id = ANY($1)', [runIds])).map((r) => [r.id, r.status]),
    );
    const lines = new Map<string, LogRow[]>();
    for (const runId of runIds) {
      const from = followers
        .filter((s) => s.follow!.runId === runId)
        .map((s) => s.follow!)
        .reduce((a, b) => (after(a, b) ? b : a));
      lines.set(
        runId,
        await this.deps.db.query<LogRow>(
          'SELECT run_id, attempt, seq, at, level, source, msg FROM run_logs WHERE run_id = $1 AND (attempt, seq) > ($2, $3) ORDER BY attempt, seq LIMIT 500',
          [runId, from.attempt, from.seq],
        ),
      );
    }
    for (const sub of followers) {
      const f = sub.follow!;
      const fresh = (lines.get(f.runId) ?? []).filter((l) => after(l, f));
      const status = statuses.get(f.runId);
      if (fresh.length === 0 && status === f.status) continue;
      const last = fresh[fresh.length - 1];
      if (last) Object.assign(f, { attempt: last.attempt, seq: last.seq });
      f.status = status;
      const data = {
        runId: f.runId,
        status,
        lines: fresh.map((l) => ({ attempt: l.attempt, seq: l.seq, at: l.at.toISOString(), level: l.level, source: l.source, msg: l.msg })),
      };
      sub.res.write(`event: log\ndata: ${JSON.stringify(data)}\n\n`);
    }
  }

  close(): void {
    this.stop();
    for (const sub of this.subscribers.values()) sub.res.end();
    this.subscribers.clear();
  }
}

/** The values the overview page marks `data-live`, keyed `segment.field`, and the latest runs. */
export function liveValues(o: Overview): { values: Record<string, string | number>; recent: Overview['recent'] } {
  const values: Record<string, string | number> = {};
  for (const s of o.segments) {
    values[`${s.segment}.waiting`] = s.waiting;
    values[`${s.segment}.retrying`] = s.retrying;
    values[`${s.segment}.active`] = s.active;
    values[`${s.segment}.deadLettered`] = s.deadLettered;
    values[`${s.segment}.oldestWaiting`] = s.oldestWaitingAt ?? '—';
    values[`${s.segment}.perMinute`] = (s.finishedLast5Min / 5).toFixed(1);
    values[`${s.segment}.successRate`] = successRate(s);
  }
  return { values, recent: o.recent };
}

export function successRate(s: { finishedLast5Min: number; succeededLast5Min: number }): string {
  return s.finishedLast5Min === 0 ? '—' : `${Math.round((100 * s.succeededLast5Min) / s.finishedLast5Min)}%`;
}
