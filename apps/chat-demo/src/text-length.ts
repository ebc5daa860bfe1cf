/**
 * Lengths as people count them: user-perceived characters (grapheme clusters), so that an emoji,
 * a flag or a letter with its accents counts one, whatever its length in UTF-16 units. The server
 * (which enforces `Limits`) and the page (which says how long a message is before sending it)
 * both count with this, so that the page never sends what the server refuses, nor the reverse.
 */
const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

/**
 * The most UTF-16 units a limit allows per character. A character may carry any number of
 * combining marks and still count one: without this bound, 500 "characters" could be megabytes.
 * The longest emoji sequences (a family of four with skin tones, a kiss with two) take under 20
 * units; text piled higher than this is refused as too long.
 */
export const UNITS_PER_CHARACTER = 32

/** How many characters `text` has, counted up to `atMost + 1` at most (more says only "too many"). */
export function characterCount(text: string, atMost = Number.POSITIVE_INFINITY): number {
  let count = 0
  for (const _ of graphemes.segment(text)) {
    if (++count > atMost) break
  }
  return count
}

/** Whether `text` has at most `max` characters (and at most `UNITS_PER_CHARACTER` units each on average). */
export function fitsIn(text: string, max: number): boolean {
  return text.length <= max * UNITS_PER_CHARACTER && characterCount(text, max) <= max
}
