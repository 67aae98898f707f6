/** The time source of the engine, in epoch milliseconds. Inject one to test time rules without waiting. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = Object.freeze({ now: Date.now });
/** A clock that moves only when told: for tests of windows, bans and expiry. */
export interface ManualClock extends Clock {
  /** Moves the clock forward by `ms` (a number) and returns the new time. */
  advance(ms: number): number;
  /** Sets the clock to `ms`. */
  set(ms: number): void;
}

/**
 * Creates a {@link ManualClock} starting at `start` (epoch ms).
 * @example
 * const clock = createManualClock();
 * const keeper = createJailkeeper({ jails, clock });
 * clock.advance(10 * 60_000);
 */
export function createManualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
      return now;
    },
    set(ms: number) {
      now = ms;
    },
  };
}
