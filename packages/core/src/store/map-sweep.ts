/**
 * A sweep of a Map a slice at a time: each `run()` looks at `max` entries at most and resumes
 * where the last one stopped, so a sweep's cost is bounded however large the Map grows. Entries
 * deleted or added between runs are seen as a Map's iterator sees them.
 */
export class MapSweep<K, V> {
  readonly #map: Map<K, V>;
  #walk: IterableIterator<[K, V]> | undefined;

  constructor(map: Map<K, V>) {
    this.#map = map;
  }

  /** Calls `drop(key)` for each entry looked at that `expired(value)` says is over. */
  run(max: number, expired: (value: V) => boolean, drop: (key: K) => void): void {
    for (let i = 0; i < max; i++) {
      this.#walk ??= this.#map.entries();
      const next = this.#walk.next();
      if (next.done) {
        this.#walk = undefined;
        return;
      }
      if (expired(next.value[1])) drop(next.value[0]);
    }
  }
}
