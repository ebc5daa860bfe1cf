import type { FastifyBaseLogger } from 'fastify'
import { logLine } from '../burst-log.js'
import { ParleyOptionError } from '../options.js'
import { readKey, shown } from '../thrown.js'
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
 * The members an adapter may leave out (absent, or undefined); present, each is a method. The
 * server reads them where it needs them: one that is no function would fail there each time,
 * as a logged adapter failure per call, rather than once here.
 */
const OPTIONAL = [
  'sessionOwner',
  'routeRequest',
  'sessionOpened',
  'sessionClosed',
  'sessionEnded',
  'endedSession',
  'handOff',
  'otherNodes',
  'appendHandOff',
  'sealHandOff',
  'settleHandOff',
  'withdrawHandOff',
  'claimSession',
  'claimSessions',
  'requestHandOff',
  'anotherNode',
  'adopters',
  'askAdoption',
  'forwardsReplies',
  'close',
] as const satisfies readonly (keyof Adapter)[]

/**
 * What the `adapter` factory made, checked before the server relies on it. Without the check an
 * async factory (a promise), or an object short of a member, registers fine and then fails every
 * handshake with a TypeError logged from deep inside the server.
 */
export function checkAdapter(made: unknown, log: FastifyBaseLogger): Adapter {
  try {
    return checked(made)
  } catch (err) {
    // Refused, it is never used, nor closed with the server: what it opened (a connection to
    // its store, a timer) would be left open, and could keep the process alive after the
    // registration failed.
    closeRefused(made, log)
    throw err
  }
}

function checked(made: unknown): Adapter {
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
  const adapter = made as Adapter
  const notMethods = OPTIONAL.flatMap((name) => {
    const member = adapterMember(adapter, name)
    return member === undefined || typeof member === 'function' ? [] : [`${name} (${describeMade(member)})`]
  })
  if (notMethods.length > 0) {
    throw new ParleyOptionError(
      'adapter',
      `must return an Adapter, and what it returned has ${notMethods.join(', ')} where a method goes: an optional member is a method, or left out`,
    )
  }
  return adapter
}

/**
 * `adapter[name]`, an optional member the server reads after the check. A getter or a Proxy's
 * trap that throws there refuses the adapter with the option's coded error, rather than failing
 * the registration with the adapter's own.
 */
export function adapterMember(adapter: Adapter, name: keyof Adapter): unknown {
  try {
    return adapter[name]
  } catch (err) {
    throw new ParleyOptionError(
      'adapter',
      `must return an Adapter whose members can be read: its ${name} could not be read: ${shown(readKey(err, 'message') ?? err)}`,
      { cause: err },
    )
  }
}

/**
 * Closes what the factory made, a promise's value once it comes, when it has a `close`. Its
 * failure, and a promise's rejection, are only logged: the registration's error says what is
 * wrong, and stays the one thrown.
 */
function closeRefused(made: unknown, log: FastifyBaseLogger): void {
  const failed = closeFailed(log)
  const close = (value: unknown) => void closeAdapter(value, log)
  // A promise that rejects gives nothing to close, but what it opened before it failed may still
  // be open: its error is logged, where it would otherwise go unheard.
  if (typeof readKey(made, 'then') === 'function') Promise.resolve(made).then(close, failed)
  else close(made)
}

/**
 * Closes an adapter a registration that failed leaves behind (refused, or accepted before a later
 * step threw), when it has a `close`: settled once that close has, and never rejected. Its
 * failure is only logged, so that the registration's error stays the one thrown.
 */
export function closeAdapter(adapter: unknown, log: FastifyBaseLogger): Promise<void> {
  const failed = closeFailed(log)
  try {
    const close = readKey(adapter, 'close')
    if (typeof close === 'function') return Promise.resolve(close.call(adapter)).then(() => {}, failed)
  } catch (err) {
    failed(err)
  }
  return Promise.resolve()
}

function closeFailed(log: FastifyBaseLogger): (err: unknown) => void {
  return (err) => logLine(log, 'warn', { err }, 'parley: the adapter did not close cleanly')
}

function describeMade(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : shown(value)
}
