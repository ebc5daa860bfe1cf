import { describe, expect, it } from 'vitest'
import { ResumeTurns } from './resume-turns.js'
import type { Handshake } from './types.js'

/** A handshake that says who it is (its `auth`); nothing else of it is read here. */
const handshakeOf = (name: string) => ({ auth: name }) as Handshake

/** A socket as the turns see it, attached with the handshake `attached`. */
const socketWith = (attached: string) => ({ handshake: handshakeOf(attached) })

/** Whether `promise` has settled, once the microtasks queued so far have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  void promise.then(() => {
    done = true
  })
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

describe('ResumeTurns', () => {
  it('runs resumes of one socket one at a time, each with its own handshake on the socket', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = await turns.take(socket, { open: true }, handshakeOf('a'))
    expect(socket.handshake.auth).toBe('a')
    const b = turns.take(socket, { open: true }, handshakeOf('b'))
    expect(await settled(b)).toBe(false)
    expect(socket.handshake.auth).toBe('a')
    a.end()
    const second = await b
    expect(socket.handshake.auth).toBe('b')
    second.attached()
    second.end()
    expect(socket.handshake.auth).toBe('b')
  })

  it('puts back the handshake of the last attach when a resume does not attach', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = await turns.take(socket, { open: true }, handshakeOf('a'))
    a.attached()
    const b = turns.take(socket, { open: true }, handshakeOf('b'))
    a.end()
    ;(await b).end()
    expect(socket.handshake.auth).toBe('a')
  })

  it('holds no one up behind a resume whose client has left', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const left = { open: true }
    const a = await turns.take(socket, left, handshakeOf('a'))
    left.open = false
    // `a`'s middleware may still run: `b` goes on beside it, and keeps its handshake there.
    const b = await turns.take(socket, { open: true }, handshakeOf('b'))
    expect(socket.handshake.auth).toBe('b')
    a.end()
    expect(socket.handshake.auth).toBe('b')
    b.end()
    expect(socket.handshake.auth).toBe('attached')
  })

  it('tells the resumes under way and waiting that the session moved away, and no later ones', async () => {
    const turns = new ResumeTurns<{ handshake: Handshake }>()
    const socket = socketWith('attached')
    const a = await turns.take(socket, { open: true }, handshakeOf('a'))
    const b = turns.take(socket, { open: true }, handshakeOf('b'))
    turns.movedAway(socket)
    expect(a.movedAway).toBe(true)
    a.end()
    const second = await b
    expect(second.movedAway).toBe(true)
    second.end()
    const later = await turns.take(socket, { open: true }, handshakeOf('c'))
    expect(later.movedAway).toBe(false)
    later.end()
  })
})
