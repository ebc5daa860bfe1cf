/** One entity-tag at the start of a string (RFC 9110 8.8.3): its opaque tag, with its quotes. */
const ENTITY_TAG = /^(?:W\/)?("[\x21\x23-\x7e\x80-\xff]*")/

/**
 * Whether an `If-None-Match` field `field` names the representation whose (strong) entity tag is
 * `etag`, quotes included, as RFC 9110 13.1.2 compares them: `*`, or a list of entity tags of
 * which one matches by weak comparison (the opaque tags alike, `W/` or not). A GET is then
 * answered 304. A field that is not such a list names nothing: the representation is sent.
 * Several `If-None-Match` lines reach here as one, joined by commas (as Node joins them).
 */
export function ifNoneMatchNames(field: string | undefined, etag: string): boolean {
  if (field === undefined) return false
  let rest = field.replace(/^[ \t]+|[ \t]+$/g, '')
  if (rest === '*') return true
  let named = false
  for (;;) {
    // Empty elements of a list are allowed and ignored (RFC 9110 5.6.1).
    rest = rest.replace(/^[ \t,]+/, '')
    if (rest === '') return named
    const tag = ENTITY_TAG.exec(rest)
    if (!tag) return false
    named ||= tag[1] === etag
    rest = rest.slice(tag[0].length).replace(/^[ \t]+/, '')
    if (rest !== '' && !rest.startsWith(',')) return false
  }
}
