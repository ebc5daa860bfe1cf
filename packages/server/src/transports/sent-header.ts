import type { ServerResponse } from 'node:http'

/**
 * Node keeps the header block it wrote (`_header`) for as long as the response lasts, as it
 * built it: a string of about twenty joined parts, some 640 bytes of heap where the text itself
 * is about 200. Reading a character of it has V8 make it one flat string, in place, and the
 * parts go. Only the representation changes: the text is the same.
 *
 * An event stream keeps its header block for as long as it is open. A poll's answer is written
 * to a response that has waited for it since the last heartbeat, long enough to be in V8's old
 * generation: until the next full collection, its header block is kept alive through it, dead
 * or not, and copied into the old generation too, all its parts.
 */
export function flattenSentHeader(res: ServerResponse): void {
  const header = (res as { _header?: unknown })._header
  if (typeof header === 'string') header.charCodeAt(0)
}
