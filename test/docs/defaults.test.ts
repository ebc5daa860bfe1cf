// The options tables of the packages' READMEs against the code: every option of the options
// type has a row, every row an option, and each default the table shows as a value is the one
// the package fills in (given explicitly, it resolves to what leaving the option out does).
import { DEFAULTS } from '@parley/client'
import { defaults as redisDefaults } from '@parley/redis'
import { defaults as serverDefaults } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { resolveOptions as resolveClientOptions } from '../../packages/client/src/options.js'
import { resolveRedisOptions } from '../../packages/redis/src/options.js'
import { resolveOptions as resolveServerOptions } from '../../packages/server/src/options.js'
import { read, tableUnder } from './markdown.js'

/** The members of an exported interface, read from its source (`  name?: type`). */
function membersOf(file: string, name: string): string[] {
  const body = new RegExp(`^export interface ${name} \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(read(file))?.[1]
  if (body === undefined) throw new Error(`no interface ${name} in ${file}`)
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1] ?? '')
}

/**
 * A default cell as a value: a cell that is one code span (`'/parley'`, `8 MiB`, `{ window:
 * 120000 }`, `Infinity`) is read as the literal it shows; words ("none", "same origin only")
 * and the name of what the code uses (`globalThis.fetch`, `console.warn`) say the option is left
 * out, and stand for `undefined`.
 */
function shownDefault(cell: string): unknown {
  const code = /^`([^`]+)`$/.exec(cell)?.[1]
  if (code === undefined || /^[A-Za-z]\w*(\.\w+)+$/.test(code)) return undefined
  const size = /^(\d+) (KiB|MiB)$/.exec(code)
  if (size) return Number(size[1]) * (size[2] === 'KiB' ? 1024 : 1024 * 1024)
  if (code === 'Infinity') return Number.POSITIVE_INFINITY
  return JSON.parse(code.replaceAll("'", '"').replace(/([{,]\s*)([A-Za-z]\w*)\s*:/g, '$1"$2":'))
}

/** The README's options table: option name to the default cell. */
function optionsTable(readme: string): Map<string, string> {
  const [header = [], ...rows] = tableUnder(read(readme), 'Options')
  const nameAt = header.indexOf('option')
  const defaultAt = header.indexOf('default')
  expect([nameAt, defaultAt]).not.toContain(-1)
  return new Map(rows.map((row) => [(row[nameAt] ?? '').replaceAll('`', ''), row[defaultAt] ?? '']))
}

const fakeRedis = { isOpen: true, isReady: true, sendCommand: async () => null, duplicate: () => fakeRedis }

describe.each([
  {
    readme: 'packages/server/README.md',
    source: 'packages/server/src/options.ts',
    type: 'ParleyServerOptions',
    resolve: (options: Record<string, unknown>) => resolveServerOptions(options),
  },
  {
    readme: 'packages/client/README.md',
    source: 'packages/client/src/options.ts',
    type: 'ClientOptions',
    resolve: (options: Record<string, unknown>) => resolveClientOptions(options),
  },
  {
    readme: 'packages/redis/README.md',
    source: 'packages/redis/src/options.ts',
    type: 'RedisAdapterOptions',
    resolve: (options: Record<string, unknown>) => resolveRedisOptions({ client: fakeRedis, ...options }),
  },
])('the options of $readme', ({ readme, source, type, resolve }) => {
  const table = optionsTable(readme)

  it(`list every member of ${type}, and nothing else`, () => {
    expect([...table.keys()].sort()).toEqual(membersOf(source, type).sort())
  })

  it('show the defaults the code fills in', () => {
    const wrong: string[] = []
    for (const [option, cell] of table) {
      if (option === 'client') continue // @parley/redis: required, no default
      const shown = shownDefault(cell)
      try {
        expect(resolve({ [option]: shown })).toEqual(resolve({}))
      } catch {
        wrong.push(`${option}: ${cell}`)
      }
    }
    expect(wrong).toEqual([])
  })
})

/**
 * The exported defaults (`defaults`, the client's `DEFAULTS`) hold the defaults the options
 * tables show, each under its option's name; the server's two nested ones under the names its
 * README gives them.
 */
describe.each([
  { readme: 'packages/server/README.md', exported: serverDefaults as Record<string, unknown> },
  { readme: 'packages/client/README.md', exported: DEFAULTS as Record<string, unknown> },
  { readme: 'packages/redis/README.md', exported: redisDefaults as Record<string, unknown> },
])('the exported defaults of $readme', ({ readme, exported }) => {
  const table = optionsTable(readme)
  const nested: Record<string, [string, string]> = {
    recoveryWindow: ['recovery', 'window'],
    compressionThreshold: ['pollingCompression', 'threshold'],
  }

  it('are those its options table shows', () => {
    const shown: Record<string, unknown> = {}
    for (const key of Object.keys(exported)) {
      const [option, member] = nested[key] ?? [key]
      const value = shownDefault(table.get(option) ?? '')
      shown[key] = member ? (value as Record<string, unknown> | undefined)?.[member] : value
    }
    expect(shown).toEqual(exported)
  })

  it('are named as the README says', () => {
    const renamed = Object.keys(exported).filter((key) => nested[key])
    const text = read(readme)
    expect(renamed.filter((key) => !text.includes(`\`${key}\` for \`${nested[key]?.join('.')}\``))).toEqual(
      [],
    )
  })
})
