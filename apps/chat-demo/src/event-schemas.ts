import type { EventSchema, EventSchemas } from '@parley/server'
import type { ClientEvents } from './shared.js'

/**
 * The shape of what the page sends, one JSON Schema per event (of its arguments array, the
 * reply callback aside). Parley checks each event against it before any handler runs, and
 * refuses one that does not fit with PARLEY_VALIDATION_FAILED: the handlers then read plain,
 * typed fields. What the fields mean (a room name's form, a message's length once trimmed,
 * the rate limits) is the handlers' to check, and they answer with the chat's own codes.
 */
export const eventSchemas: Required<EventSchemas<keyof ClientEvents & string>> = {
  join: oneObject({ room: { type: 'string' } }, ['room']),
  // `key`: the page's own id for the message, so a resend is not stored twice.
  chat: oneObject(
    { room: { type: 'string' }, text: { type: 'string' }, key: { type: 'string', maxLength: 64 } },
    ['room', 'text'],
  ),
  typing: oneObject({ room: { type: 'string' }, typing: { type: 'boolean' } }, ['room', 'typing']),
}

/** One argument, an object with exactly these properties (those in `required` must be there). */
function oneObject(properties: Record<string, EventSchema>, required: string[]): EventSchema {
  return {
    type: 'array',
    items: [{ type: 'object', properties, required, additionalProperties: false }],
    minItems: 1,
    maxItems: 1,
  }
}
