/**
 * A command, or what makes it at the moment it goes on the connection (again at each try, for
 * an undo), for one whose arguments depend on when it goes: the record of how a session ended
 * carries only what is left of its TTL from the end, however long it waited its turn or for
 * Redis (see `EndedRecords`). Undefined when it has nothing left to do by then: not sent.
 */
export type MadeArgs = string[] | (() => string[] | undefined)

/** `args` as they are now: made now when they are made as they go (see `MadeArgs`). */
export function argsNow(args: MadeArgs): string[] | undefined {
  return typeof args === 'function' ? args() : args
}
