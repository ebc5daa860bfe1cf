import type { Gate } from './gate.js'

/**
 * A handshake middleware that lets every client through but, once `armed()`, the first one: held
 * at `cue` (a database call without a timeout of its own), then handed to `after`, which may
 * throw at it (a middleware whose database pool a close hook closed meanwhile).
 */
export function holdingOnce(cue: Gate, armed: () => boolean, after?: () => void): () => Promise<void> {
  let spent = false
  return async () => {
    if (!armed() || spent) return
    spent = true
    await cue.pass()
    after?.()
  }
}
