/** The scripts whose letters join one another as they are written: ZWNJ parts them, ZWJ joins them. */
export const CURSIVE = '\\p{Script=Arabic}\\p{Script=Syriac}\\p{Script=Nko}\\p{Script=Mongolian}'

/** The Indic scripts, whose conjuncts ZWJ and ZWNJ shape after a virama. */
export const INDIC =
  '\\p{Script=Devanagari}\\p{Script=Bengali}\\p{Script=Gurmukhi}\\p{Script=Gujarati}' +
  '\\p{Script=Oriya}\\p{Script=Tamil}\\p{Script=Telugu}\\p{Script=Kannada}' +
  '\\p{Script=Malayalam}\\p{Script=Sinhala}'

/**
 * The scripts whose letters join or part by ZWJ and ZWNJ: Persian and Arabic words ("می‌خواهم"),
 * Syriac, N'Ko, Mongolian, and the Indic scripts' conjuncts (a virama, then ZWJ or ZWNJ).
 */
const JOINING = CURSIVE + INDIC

/**
 * The viramas of the scripts of `INDIC` (canonical combining class 9): the sign that
 * takes a consonant's vowel away, after which ZWJ and ZWNJ choose how the consonant is drawn.
 */
export const VIRAMA = '\\u094D\\u09CD\\u0A4D\\u0ACD\\u0B4D\\u0BCD\\u0C4D\\u0CCD\\u0D3B\\u0D3C\\u0D4D\\u0DCA'

/**
 * The format characters a name may hold, where they change how it is drawn:
 * - ZWJ between two emoji (a family, a profession: 👩‍🚀), after a skin tone or VS16 if any;
 * - ZWJ or ZWNJ between two letters (with their marks) of a script that uses them;
 * - ZWJ or ZWNJ right after a virama, also at the end of a word or of the name: a Malayalam chillu
 *   typed the old way is a consonant, a virama and ZWJ (ന്‍, drawn ൻ);
 * - a subdivision flag's tag characters after the black flag (🏴 and its tags: England's flag).
 * Between Latin letters, or anywhere else, they are drawn as nothing.
 */
const NEEDED = new RegExp(
  [
    '(?<=\\p{Extended_Pictographic}[\\u{FE0F}\\u{1F3FB}-\\u{1F3FF}]?)\\u200D(?=\\p{Extended_Pictographic})',
    `(?<=[${JOINING}]\\p{M}*)[\\u200C\\u200D](?=\\p{M}*[${JOINING}])`,
    `(?<=[${VIRAMA}])[\\u200C\\u200D]`,
    '(?<=\\u{1F3F4})[\\u{E0020}-\\u{E007E}]+\\u{E007F}',
  ].join('|'),
  'gu',
)

const FORMAT = /\p{Cf}/u

/**
 * The first format character (Unicode category Cf) in `name` that it does not need (see
 * `NEEDED`), as `U+XXXX`; none when there is none. Such a character is drawn as nothing: with one
 * between its letters, 'ad\u200Bmin' shows as "admin" and is another name for the chat.
 *
 * The bidi marks (LRM, RLM, ALM) are format characters too, and are refused with the others: a
 * mark is invisible, so 'admin\u200E' would pass for "admin" as well, and a name needs none to be
 * drawn right: the page draws every name isolated, in the direction of its own first letter.
 */
export function unneededFormatCharacter(name: string): string | undefined {
  const found = FORMAT.exec(name.replace(NEEDED, ''))
  const code = found?.[0].codePointAt(0)
  return code === undefined ? undefined : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`
}
