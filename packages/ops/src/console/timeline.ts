/** What the console charts, per minute and per jail. */
export const TIMELINE_KINDS = ['failures', 'bans', 'refusals', 'unbans'] as const;
/** One charted figure: one of {@link TIMELINE_KINDS}. */
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

const MINUTES = 60;
const MAX_JAILS = 64;
const OTHER = '(other jails)';

/** The last hour, minute by minute: `minutes` are epoch seconds of each minute's start. */
export interface TimelineSeries {
  readonly minutes: number[];
  /** Per kind, per jail, one count per minute (aligned with `minutes`). */
  readonly series: Record<TimelineKind, Record<string, number[]>>;
}

/**
 * Per-minute counters over the last hour: a fixed ring of 60 slots per jail and kind, fed by keeper
 * events. Memory is bounded (64 jails, then one "other" row); recording is two array writes.
 */
export class Timeline {
  readonly #now: () => number;
  /** The minute (epoch ms / 60000) each slot holds. */
  readonly #stamps = new Float64Array(MINUTES).fill(-1);
  readonly #counts = new Map<string, Record<TimelineKind, Uint32Array>>();

  constructor(now: () => number) {
    this.#now = now;
  }

  #row(jail: string): Record<TimelineKind, Uint32Array> {
    let row = this.#counts.get(jail);
    if (row === undefined) {
      if (this.#counts.size >= MAX_JAILS - 1 && jail !== OTHER) return this.#row(OTHER);
      row = {
        failures: new Uint32Array(MINUTES),
        bans: new Uint32Array(MINUTES),
        refusals: new Uint32Array(MINUTES),
        unbans: new Uint32Array(MINUTES),
      };
      this.#counts.set(jail, row);
    }
    return row;
  }

  #slot(minute: number): number {
    const slot = minute % MINUTES;
    if (this.#stamps[slot] !== minute) {
      // A slot from an hour ago (or older) is reused: clear it in every row first.
      this.#stamps[slot] = minute;
      for (const row of this.#counts.values()) for (const kind of TIMELINE_KINDS) row[kind][slot] = 0;
    }
    return slot;
  }

  record(kind: TimelineKind, jail: string, count = 1): void {
    if (count <= 0) return;
    const slot = this.#slot(Math.floor(this.#now() / 60_000));
    const row = this.#row(jail);
    row[kind][slot] = (row[kind][slot] as number) + count;
  }

  /** The last 60 minutes, the current one last. */
  series(): TimelineSeries {
    const current = Math.floor(this.#now() / 60_000);
    const minutes: number[] = [];
    for (let m = current - MINUTES + 1; m <= current; m++) minutes.push(m * 60);
    const series = { failures: {}, bans: {}, refusals: {}, unbans: {} } as TimelineSeries['series'];
    for (const [jail, row] of this.#counts) {
      for (const kind of TIMELINE_KINDS) {
        series[kind][jail] = minutes.map((seconds) => {
          const minute = seconds / 60;
          const slot = minute % MINUTES;
          return this.#stamps[slot] === minute ? (row[kind][slot] as number) : 0;
        });
      }
    }
    return { minutes, series };
  }
}
