// What the tests of one-socket.ts share: a memory adapter that counts the sockets its walks of the
// rooms test, a set of rooms that counts how often it is read, and the places a socket can be in
// for a broadcast or a question to reach it alone (or not).
import {
  type BroadcastMessage,
  type BroadcastOptions,
  type BroadcastReply,
  MemoryAdapter,
} from '@parley/server'
import { to } from './handoff-support.js'

/** A memory adapter that counts the sockets its walks of the rooms test (`only`). */
export class CountingMemory extends MemoryAdapter {
  visits = 0

  override broadcast(
    message: BroadcastMessage,
    options: BroadcastOptions,
    only?: (id: string) => boolean,
  ): void {
    super.broadcast(message, options, this.#counted(only))
  }

  override broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
    only?: (id: string) => boolean,
  ): void {
    super.broadcastWithAck(message, options, timeout, expect, reply, this.#counted(only))
  }

  #counted(only: ((id: string) => boolean) | undefined): ((id: string) => boolean) | undefined {
    return (
      only &&
      ((id) => {
        this.visits++
        return only(id)
      })
    )
  }
}

/** The question's rooms, counting how often a socket is tested against them (walked or not). */
export class CountingRooms extends Set<string> {
  reads = 0

  override [Symbol.iterator](): SetIterator<string> {
    this.reads++
    return super[Symbol.iterator]()
  }
}

/**
 * A name, the socket asked alone, the options, and the rooms of sockets a, b and gone (gone then
 * leaves the node, its rooms kept).
 */
export type OneSocketCase = [string, string, BroadcastOptions, (memory: MemoryAdapter) => void]

export const oneSocketCases: OneSocketCase[] = [
  ['in the room', 'a', to(['r']), (m) => m.addAll('a', ['a', 'r'])],
  ['in another room', 'a', to(['r']), (m) => m.addAll('a', ['a', 'elsewhere'])],
  ['in no room at all', 'a', to(['r']), () => undefined],
  ['in no room at all, to all', 'a', to([]), () => undefined],
  ['in two of the rooms', 'a', to(['r', 'q']), (m) => m.addAll('a', ['a', 'r', 'q'])],
  ['reached by its own room', 'a', to(['a']), (m) => m.addAll('a', ['a'])],
  ['in a room but not its own', 'a', to(['a']), (m) => m.addAll('a', ['r'])],
  ['reached by a broadcast to all', 'a', to([]), (m) => m.addAll('a', ['a'])],
  [
    'whose rooms it left, to all',
    'a',
    to([]),
    (m) => {
      m.addAll('a', ['r'])
      m.del('a', 'r')
    },
  ],
  ['in the room, not on this node', 'gone', to(['r']), (m) => m.addAll('gone', ['gone', 'r'])],
  [
    'left out by except',
    'a',
    { ...to(['r']), except: new Set(['x']) },
    (m) => m.addAll('a', ['a', 'r', 'x']),
  ],
  [
    'not left out by an except it is not in',
    'a',
    { ...to(['r', 'q']), except: new Set(['b']) },
    (m) => {
      m.addAll('a', ['a', 'q'])
      m.addAll('b', ['b', 'r'])
    },
  ],
]
