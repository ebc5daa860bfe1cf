import { ParleyOptionError } from '../options.js'
import { readKey } from '../thrown.js'
import type { Adapter } from './adapter.js'

/** The members every adapter has (README, "Writing an adapter"); the others are optional. */
const REQUIRED = [
  'addAll',
  'del',
  'delAll',
  'socketRooms',
  'broadcast',
  'broadcastWithAck',
  'fetchSockets',
  'addSockets',
  'delSockets',
  'disconnectSockets',
] as const

/**
 * What the `adapter` factory made, checked before the server relies on it. Without the check an
 * async factory (a promise), or an object short of a member, registers fine and then fails every
 * handshake with a TypeError logged from deep inside the server.
 */
export function checkAdapter(made: unknown): Adapter {
  if (made === null || (typeof made !== 'object' && typeof made !== 'function')) {
    throw new ParleyOptionError('adapter', `must return an Adapter, and returned ${describeMade(made)}`)
  }
  if (typeof readKey(made, 'then') === 'function') {
    throw new ParleyOptionError(
      'adapter',
      'must return the Adapter itself, and returned a promise: the factory runs synchronously (await what it needs before registering)',
    )
  }
  const missing = REQUIRED.filter((name) => typeof readKey(made, name) !== 'function')
  if (missing.length > 0) {
    throw new ParleyOptionError(
      'adapter',
      `must return an Adapter, and what it returned has no ${missing.join(', ')} (${missing.length === 1 ? 'a method' : 'methods'} every adapter has)`,
    )
  }
  return made as Adapter
}

function describeMade(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : String(value)
}
