// Each package README says, in one paragraph, what the package exports: every value the package
// exports is named there, and every type or class it names is still exported.
import * as client from '@parley/client'
import * as protocol from '@parley/protocol'
import * as redis from '@parley/redis'
import * as server from '@parley/server'
import { describe, expect, it } from 'vitest'
import { prose, read } from './markdown.js'

/** The paragraph of the README that starts with `opening`. */
function paragraph(readme: string, opening: string): string {
  const found = prose(read(readme))
    .split(/\n\s*\n/)
    .find((p) => p.startsWith(opening))
  if (found === undefined) throw new Error(`no paragraph "${opening}..." in ${readme}`)
  return found
}

/** The names of code spans that are bare identifiers (`Socket`, `connect`), not `a.b` or `'x'`. */
const namesIn = (text: string) => new Set([...text.matchAll(/`([A-Za-z_]\w*)`/g)].map((m) => m[1] ?? ''))

describe.each([
  { pkg: 'client', module: client, opening: 'Besides `connect`' },
  { pkg: 'server', module: server, opening: "The plugin is the package's default export" },
  { pkg: 'redis', module: redis, opening: 'Besides `redisAdapter`' },
])('the exports of @parley/$pkg', ({ pkg, module, opening }) => {
  const readme = `packages/${pkg}/README.md`
  const named = namesIn(paragraph(readme, opening))
  const index = read(`packages/${pkg}/src/index.ts`)

  it(`are each named in ${readme}`, () => {
    const values = Object.keys(module).filter((name) => name !== 'default')
    expect(values.filter((name) => !named.has(name))).toEqual([])
  })

  it('include every type or constant the README names', () => {
    const capitalised = [...named].filter((name) => /^[A-Z]/.test(name))
    expect(
      capitalised.filter((name) => !(name in module) && !new RegExp(`\\b${name}\\b`).test(index)),
    ).toEqual([])
  })
})

describe('the exports of @parley/protocol', () => {
  it('are each named in its README', () => {
    const named = namesIn(read('packages/protocol/README.md'))
    expect(Object.keys(protocol).filter((name) => !named.has(name))).toEqual([])
  })
})
