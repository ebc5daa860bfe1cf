import { ParleyError } from '@parley/server'
import { unneededFormatCharacter } from './format-characters.js'
import { type ChatAuth, ChatErrorCode, Limits } from './shared.js'
import { fitsIn } from './text-length.js'
import { showsSomething } from './visible.js'

/**
 * The bidi embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI): they
 * reorder the letters around them, so that a name can be drawn as another one. The marks (LRM, RLM,
 * ALM) only nudge where neutral characters go; invisible, they are refused with the other format
 * characters (see `unneededFormatCharacter`), with a message of their own.
 */
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/u

/**
 * The nickname a handshake's auth asks for, trimmed, as it is written (none when it is not a
 * string). Not checked yet: see `checkedNickname`.
 */
export function askedNickname(auth: unknown): string | undefined {
  const name = fieldOf(auth, 'nickname')
  return typeof name === 'string' ? name.trim() : undefined
}

/**
 * The nickname a handshake's auth asks for, if the chat takes it as a name; otherwise throws
 * BAD_NICKNAME, with a message that says what to change. Whether someone else uses it is
 * another question (see `Nicknames`).
 */
export function checkedNickname(auth: unknown): string {
  const nickname = askedNickname(auth)
  // Its room is one Parley takes, however long the name's key (see Nicknames.roomOf).
  if (nickname === undefined || nickname.length === 0 || !fitsIn(nickname, Limits.nickname)) {
    throw new ParleyError(ChatErrorCode.BAD_NICKNAME, `pick a nickname of 1 to ${Limits.nickname} characters`)
  }
  // A name of nothing visible would show as a blank in the people list and on each message:
  // a person nobody can tell apart or name.
  if (!showsSomething(nickname)) {
    throw new ParleyError(
      ChatErrorCode.BAD_NICKNAME,
      'pick a nickname that shows: zero-width and bidi control characters alone show nothing',
    )
  }
  // One that shows may still pass for another: '\u202Enimda' is drawn "admin". Right-to-left
  // letters need no control to be drawn as they should (the page isolates every name).
  if (BIDI_CONTROL.test(nickname)) {
    throw new ParleyError(
      ChatErrorCode.BAD_NICKNAME,
      'pick a nickname without bidi embedding, override or isolate controls (U+202A to U+202E, U+2066 to U+2069): they make a name read as another',
    )
  }
  // Nor may one hide a character that is drawn as nothing: 'ad\u200Bmin' shows as "admin".
  const hidden = unneededFormatCharacter(nickname)
  if (hidden !== undefined) {
    throw new ParleyError(
      ChatErrorCode.BAD_NICKNAME,
      `pick a nickname without invisible format characters (${hidden} here): drawn as nothing, they make a name pass for another`,
    )
  }
  return nickname
}

/** The browser's id in a handshake's auth (see `ChatAuth.visitor`); none when it is not one. */
export function visitorOf(auth: unknown): string | undefined {
  const visitor = fieldOf(auth, 'visitor')
  return typeof visitor === 'string' && /^[\w-]{16,64}$/.test(visitor) ? visitor : undefined
}

function fieldOf(auth: unknown, field: keyof ChatAuth): unknown {
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) return undefined
  return (auth as Partial<Record<keyof ChatAuth, unknown>>)[field]
}
