import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import { UnreachableOwners } from './unreachable-owners.js'

describe('UnreachableOwners', () => {
  it('logs the first at once and the rest of the burst at close, with the node of the first', () => {
    const lines: Record<string, unknown>[] = []
    const log = { warn: (obj: Record<string, unknown>) => lines.push(obj) } as unknown as FastifyBaseLogger
    const unreachable = new UnreachableOwners(log)
    for (const node of ['a', 'b', 'c']) unreachable.record(node, new Error('ECONNREFUSED'))
    unreachable.close()
    expect(lines.map(({ count, total, node }) => [count, total, node])).toEqual([
      [1, 1, 'a'],
      [2, 3, 'b'],
    ])
    expect(unreachable.total).toBe(3)
  })
})
