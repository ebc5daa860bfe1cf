import { CURSIVE, INDIC, VIRAMA } from './format-characters.js'

/**
 * The joiners a name's key keeps, where they change what is drawn (see `nicknameKey`):
 * - a ZWJ after a virama (a half form, a Malayalam chillu typed the old way), and a ZWNJ after one
 *   with an Indic letter after it (the virama shown, not a conjunct), or a ZWJ between a letter
 *   and a virama (Devanagari's eyelash ra, Sinhala's touching letters);
 * - a ZWJ or ZWNJ between two letters of a cursive script: it joins or parts them. Whether a
 *   letter joins on that side at all is not known here (no Joining_Type in a regular
 *   expression), so one between letters that would part anyway counts as drawn.
 * Elsewhere in a name the chat takes (see `unneededFormatCharacter`), a joiner draws as nothing:
 * between two Indic letters without a virama, a ZWNJ at the end of a word after a virama.
 */
const DRAWN_JOINER = [
  `(?<=[${VIRAMA}])\\u200D`,
  `(?<=[${VIRAMA}])\\u200C(?=\\p{M}*[${INDIC}])`,
  `(?<=\\p{L}\\p{M}*)\\u200D(?=[${VIRAMA}])`,
  `(?<=[${CURSIVE}]\\p{M}*)[\\u200C\\u200D](?=\\p{M}*[${CURSIVE}])`,
].join('|')

/**
 * What a name's key keeps of what draws as nothing (the first group): an emoji ZWJ sequence that is drawn as one
 * picture (👩‍🚀, not 👩 and 🚀 side by side), and a region's flag (🏴 and its tags: England's) are
 * kept whole; a joiner that changes what is drawn, as above. Every other default
 * ignorable character (variation selectors, the combining grapheme joiner, Hangul fillers, a ZWJ
 * between emoji that no font draws as one, the tags of a flag that is not a region's) goes.
 * Made when first used: the `v` flag (sets of strings) is newer than the rest of the page needs.
 */
let folded: RegExp | undefined
const foldedCharacters = () =>
  (folded ??= new RegExp(
    `(\\p{RGI_Emoji_ZWJ_Sequence}|\\p{RGI_Emoji_Tag_Sequence}|${DRAWN_JOINER})|\\p{Default_Ignorable_Code_Point}`,
    'gv',
  ))

/**
 * A pictograph without a skin tone after it. An emoji in a ZWJ sequence is written with VS16 when
 * it is drawn as text by default (❤️‍🔥), and may be sent without (❤‍🔥, drawn the same by most
 * fonts): given its VS16 before the key looks for sequences, either is found.
 */
const PICTOGRAPH = /\p{Extended_Pictographic}(?!\p{Emoji_Modifier})/gu
const EMOJI_BY_DEFAULT = /\p{Emoji_Presentation}/u
const PRESENTATION = /[\uFE0E\uFE0F]/gu

/**
 * The person a nickname names: names that are drawn the same are one name, held by one browser
 * at a time. NFKC and letter case first ("Sam" and "sam", "é" composed or not, "Ｓａｍ" in full
 * width); then what draws as nothing goes, but for what changes the picture (see
 * `foldedCharacters`): "Ann" with a variation selector or a combining grapheme joiner after it is
 * "Ann", while 👩‍🚀 is not 👩🚀 nor می‌خواهم میخواهم. A variation selector picks a glyph or a
 * style of the character before it (❤️ and ❤ are one heart): it goes too. And a run of spaces is
 * one, as the page draws it. Letters of two scripts that look alike (Latin "a", Cyrillic "а") stay
 * two: Unicode's confusables are another, much larger table.
 */
export function nicknameKey(nickname: string): string {
  const cased = nickname.normalize('NFKC').toLowerCase().normalize('NFKC')
  const qualified = cased
    .replace(PRESENTATION, '')
    .replace(PICTOGRAPH, (emoji) => (EMOJI_BY_DEFAULT.test(emoji) ? emoji : `${emoji}\uFE0F`))
  return qualified
    .replace(foldedCharacters(), (_, kept?: string) => kept ?? '')
    .replace(PRESENTATION, '')
    .normalize('NFKC')
    .replace(/\p{White_Space}+/gu, ' ')
    .trim()
}
