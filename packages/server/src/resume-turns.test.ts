import { describe, expect, it } from 'vitest'
import { ResumeTurns } from './resume-turns.js'
import type { Handshake } from './types.js'

/** A handshake that says who it is (its `auth`); nothing else of it is read here. */
const handshakeOf = (name: string) => ({ auth: name }) as Handshake

/** A socket as the turns see it, attached with the handshake `attached`. */
const socketWith = (attached: string) => ({ handshake: handshakeOf(attached) })

/** Whether `promise` has settled, once the microtasks queued so far have run. */
async function settled(promise: Promise<unknown> | undefined): Promise<boolean> {
  let done = false
  void promise?.then(() => {
    done = true
  })
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

describe('ResumeTurns', () => {
  it('runs resumes of one socket one at a time, each with its own handshake on the socket', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = turns.take(socket, handshakeOf('a'))
    expect(a.waiting).toBeUndefined()
    expect(socket.handshake.auth).toBe('a')
    const b = turns.take(socket, handshakeOf('b'))
    expect(await settled(b.waiting)).toBe(false)
    expect(socket.handshake.auth).toBe('a')
    a.end()
    await b.waiting
    expect(socket.handshake.auth).toBe('b')
    b.attached()
    b.end()
    expect(socket.handshake.auth).toBe('b')
  })

  it('puts back the handshake of the last attach when a resume does not attach', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = turns.take(socket, handshakeOf('a'))
    a.attached()
    const b = turns.take(socket, handshakeOf('b'))
    a.end()
    await b.waiting
    b.end()
    expect(socket.handshake.auth).toBe('a')
  })

  it('lets a resume that gave up waiting leave the queue without ever beginning', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = turns.take(socket, handshakeOf('a'))
    const b = turns.take(socket, handshakeOf('b'))
    // Its bound ran out: it ends without its turn, and the one after it takes its place.
    b.end()
    const c = turns.take(socket, handshakeOf('c'))
    a.end()
    await c.waiting
    expect(await settled(b.waiting)).toBe(false)
    expect(socket.handshake.auth).toBe('c')
    c.attached()
    c.end()
    expect(socket.handshake.auth).toBe('c')
  })

  it('tells the resumes under way and waiting that the session moved away, and no later ones', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = turns.take(socket, handshakeOf('a'))
    const b = turns.take(socket, handshakeOf('b'))
    turns.movedAway(socket)
    expect(a.movedAway).toBe(true)
    a.end()
    await b.waiting
    expect(b.movedAway).toBe(true)
    b.end()
    const later = turns.take(socket, handshakeOf('c'))
    expect(later.movedAway).toBe(false)
    later.end()
  })
})
