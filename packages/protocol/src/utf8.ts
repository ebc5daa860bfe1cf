/*
 * `maxPayload` counts UTF-8 bytes, as the wire carries them (docs/protocol.md, maxPayload), but
 * a packet is a JavaScript string, counted in UTF-16 units. A unit is 1 to 3 bytes (a surrogate
 * pair, two units, is 4), so the length alone settles most packets: more units than the limit
 * is surely past it, a third of the limit or fewer surely within. Only between are the bytes
 * counted, once per packet that large, which a packet of the default limit rarely is.
 */

/** Whether `text` takes more than `limit` bytes in UTF-8. */
export function pastBytes(text: string, limit: number): boolean {
  const units = text.length
  if (units > limit) return true
  if (units * 3 <= limit) return false
  return utf8Length(text, limit) > limit
}

/**
 * The UTF-8 bytes of `text`, as TextEncoder would write it (a lone surrogate as the 3 bytes of
 * U+FFFD). `stopPast`: counting may stop once past it, returning a count past it.
 */
export function utf8Length(text: string, stopPast = Number.POSITIVE_INFINITY): number {
  let bytes = 0
  const units = text.length
  for (let i = 0; i < units && bytes <= stopPast; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) bytes++
    else if (c < 0x800) bytes += 2
    else if (c < 0xd800 || c > 0xdbff || (text.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) bytes += 3
    else {
      // A high surrogate followed by a low one: one code point, 4 bytes.
      bytes += 4
      i++
    }
  }
  return bytes
}
