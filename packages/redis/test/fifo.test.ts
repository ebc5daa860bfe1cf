// The queue of commands waiting their turn (see `Commands.sendInTurn`): first in, first out,
// across the points where it drops its taken front.
import { describe, expect, it } from 'vitest'
import { Fifo } from '../src/fifo.js'

describe('Fifo', () => {
  it('gives its items back in order, across many takes and pushes, and undefined once empty', () => {
    const fifo = new Fifo<number>()
    expect(fifo.shift()).toBeUndefined()
    const taken: number[] = []
    let next = 0
    // Pushes ahead of takes, so that the front taken reaches half of what is held many times.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) fifo.push(next++)
      for (let i = 0; i < 200; i++) taken.push(fifo.shift()!)
      expect(fifo.length).toBe(next - taken.length)
    }
    while (fifo.length > 0) taken.push(fifo.shift()!)
    expect(taken).toEqual(Array.from({ length: next }, (_, i) => i))
    expect(fifo.shift()).toBeUndefined()
    fifo.push(7)
    expect(fifo.length).toBe(1)
    expect(fifo.shift()).toBe(7)
  })
})
