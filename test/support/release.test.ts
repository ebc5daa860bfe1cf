import { describe, expect, it } from 'vitest'
import { releaseAll } from './release.js'

describe('releaseAll', () => {
  it('runs every step in order, and throws the first failure once all have run', async () => {
    const ran: string[] = []
    const first = new Error('first (test)')
    const promise = releaseAll([
      () => ran.push('a'),
      () => {
        ran.push('b')
        throw first
      },
      async () => {
        ran.push('c')
        throw new Error('second (test)')
      },
      async () => void ran.push('d'),
    ])
    await expect(promise).rejects.toBe(first)
    expect(ran).toEqual(['a', 'b', 'c', 'd'])
  })

  it('resolves when every step does', async () => {
    await expect(releaseAll([() => undefined, async () => 1])).resolves.toBeUndefined()
  })
})
