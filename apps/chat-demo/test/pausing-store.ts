import type { Added, ChatStore, Draft, Joined } from '../src/store.js'

/**
 * Makes the next join of `room` in `store` wait, once the store has read the room's history and
 * before the join goes on, for `meanwhile`: what others do at that moment, which a real store
 * cannot be made to hit on cue. Works on any store (in memory or on Redis); later joins are
 * left alone.
 */
export function pauseNextJoin(store: ChatStore, room: string, meanwhile: () => Promise<void>): void {
  const join = store.join.bind(store)
  let paused = false
  store.join = async (asked: string): Promise<Joined | undefined> => {
    const joined = await join(asked)
    if (asked === room && !paused) {
      paused = true
      await meanwhile()
    }
    return joined
  }
}

/**
 * Makes the next message `store` takes (stored, or found as a resend) wait for `meanwhile`: before
 * its answer goes back to the handler, or (`before: true`) before it is stored at all. Later
 * messages are left alone.
 */
export function pauseNextAdd(
  store: ChatStore,
  meanwhile: () => Promise<void>,
  { before = false } = {},
): void {
  const add = store.add.bind(store)
  let paused = false
  store.add = async (draft: Draft, key?: string): Promise<Added> => {
    const pause = !paused
    paused = true
    if (pause && before) await meanwhile()
    const added = await add(draft, key)
    if (pause && !before) await meanwhile()
    return added
  }
}
