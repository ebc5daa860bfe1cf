/**
 * The newest people list the page heard for each room it was in. In a cluster, the lists two
 * nodes send for one room (and a join's answer) may cross on their way, so the last to arrive can
 * be the older one: it would show someone who left, or miss someone who came, until the next
 * change. Each list has a version that grows across the nodes (see the `presence` event); an
 * older one than the page holds is ignored. A list without one (sent while the server could not
 * reach its store) is taken as it comes, and the next list with a version is newer than it.
 */
export class PeopleLists {
  readonly #newest = new Map<string, { people: string[]; version: number }>()

  /** Takes a list of `room` heard now, unless a newer one was heard before; gives the newest. */
  heard(room: string, people: string[], version: number | undefined): string[] {
    const held = this.#newest.get(room)
    const before = held?.version ?? Number.NEGATIVE_INFINITY
    if (version === undefined || version >= before) {
      this.#newest.set(room, { people, version: version ?? before })
      return people
    }
    return held?.people ?? people
  }
}
