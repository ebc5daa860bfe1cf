// packages/server/README.md's "Writing an adapter" table against the `Adapter` interface: a
// member of its own for each row, a row for each member, and required where the interface
// requires it (the README once only pointed at the source).
import { describe, expect, it } from 'vitest'
import { read, tableUnder } from './markdown.js'

/** The members of the `Adapter` interface, read from its source, each with whether it is optional. */
function adapterMembers(): Map<string, boolean> {
  const source = read('packages/server/src/adapter/adapter.ts')
  const body = /^export interface Adapter \{\n([\s\S]*?)^\}/m.exec(source)?.[1]
  if (body === undefined) throw new Error('no interface Adapter in packages/server/src/adapter/adapter.ts')
  return new Map([...body.matchAll(/^ {2}(\w+)(\??)[(:]/gm)].map((m) => [m[1] ?? '', m[2] === '?']))
}

describe('packages/server/README.md, Writing an adapter', () => {
  const [header = [], ...rows] = tableUnder(read('packages/server/README.md'), 'Writing an adapter')
  const memberAt = header.indexOf('member')
  const neededAt = header.indexOf('needed')
  /** `addAll(id, rooms)` is `addAll`. */
  const shown = new Map(
    rows.map((row) => [/^`(\w+)\(/.exec(row[memberAt] ?? '')?.[1] ?? row[memberAt], row[neededAt] ?? '']),
  )
  const members = adapterMembers()

  it('has a row for each member of the Adapter interface, and no other', () => {
    expect([memberAt, neededAt]).not.toContain(-1)
    expect(members.size).toBeGreaterThan(10)
    expect([...shown.keys()].sort()).toEqual([...members.keys()].sort())
  })

  it('calls required exactly the members the interface requires', () => {
    const required = [...members].filter(([, optional]) => !optional).map(([name]) => name)
    const shownRequired = [...shown].filter(([, needed]) => needed === 'required').map(([name]) => name)
    expect(shownRequired.sort()).toEqual(required.sort())
  })
})
