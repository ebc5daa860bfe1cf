// The environment variables the docs tell users to set (`PORT=3001 pnpm demo`, `REDIS_URL`, ...)
// are read by the code they are set for, or by Node itself.
import { describe, expect, it } from 'vitest'
import { read, userDocs } from './markdown.js'
import { allCode } from './sources.js'

/** `NAME=` in a command or a sentence, and `process.env.NAME` in an example. */
function variablesIn(text: string): Set<string> {
  const set = [...text.matchAll(/(?:^|[^\w$.])([A-Z][A-Z0-9_]{2,})=/gm)].map((m) => m[1] ?? '')
  const read = [...text.matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1] ?? '')
  return new Set([...set, ...read])
}

/** Read by Node, not by Parley: a doc may tell users to set them for Node's sake. */
const NODE_OWN = new Set(['NODE_EXTRA_CA_CERTS'])

describe('environment variables in the docs', () => {
  it.each(userDocs)('%s: each is read by the code', (doc) => {
    const code = allCode()
    const unread = [...variablesIn(read(doc))].filter(
      (name) => !NODE_OWN.has(name) && !new RegExp(`env(\\.${name}\\b|\\[['"]${name}['"]\\])`).test(code),
    )
    expect(unread).toEqual([])
  })
})
