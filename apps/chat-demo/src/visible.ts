/**
 * A character that shows something: neither a space nor one that is drawn as nothing (zero-width
 * spaces and joiners, bidi controls, variation selectors, fillers: Unicode's default ignorables).
 */
const VISIBLE = /[^\p{White_Space}\p{Default_Ignorable_Code_Point}]/u

/**
 * Whether `text` shows anything. The server refuses a nickname or a message that does not (it
 * would show as a blank), and the page checks a message with this before sending it, so that
 * it never sends one the server refuses.
 */
export function showsSomething(text: string): boolean {
  return VISIBLE.test(text)
}
