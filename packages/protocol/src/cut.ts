/**
 * `text` cut to at most `max` UTF-16 units, at a code point's edge: a character outside the BMP
 * (an emoji) across the limit is left out whole, never kept as its first half alone, which a
 * reader would show as a replacement character (and which is not valid UTF-8 once encoded).
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text
  const last = text.charCodeAt(max - 1)
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
}
