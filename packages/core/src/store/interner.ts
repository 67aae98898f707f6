/**
 * Reference-counted string ids: jail names and ban reasons repeat over many bans, so a ban table
 * keeps a small number per ban and one copy of each text. An id is freed (and reused) when its
 * last ban goes, so operators' free-form reasons cannot grow the table for ever.
 */
export class Interner {
  readonly #ids = new Map<string, number>();
  readonly #names: (string | undefined)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = [];

  /** The id of `name`, counting one more user. */
  acquire(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(name, id);
      this.#names[id] = name;
      this.#refs[id] = 0;
    }
    this.#refs[id] = (this.#refs[id] as number) + 1;
    return id;
  }

  /** One user fewer; the id is freed with its last. */
  release(id: number): void {
    const left = (this.#refs[id] as number) - 1;
    this.#refs[id] = left;
    if (left > 0) return;
    this.#ids.delete(this.#names[id] as string);
    this.#names[id] = undefined;
    this.#free.push(id);
  }

  /** The id of `name` if some ban uses it, without counting a user. */
  peek(name: string): number | undefined {
    return this.#ids.get(name);
  }

  name(id: number): string {
    return this.#names[id] as string;
  }

  /** Users of an id. */
  refs(id: number): number {
    return this.#refs[id] ?? 0;
  }

  /** The names in use, with their users. */
  *entries(): IterableIterator<[string, number]> {
    for (const [name, id] of this.#ids) yield [name, this.#refs[id] as number];
  }
}
