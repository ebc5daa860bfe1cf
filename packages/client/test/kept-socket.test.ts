// A socket the application keeps after disconnect() (for a later connect()) must not keep the
// transport of its last attempt: the connection held it (to let it go at disconnect(), see
// Transport.leave) long after that attempt had opened, with its WebSocket and everything it held.
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { childResult } from './child-process.js'

const child = fileURLToPath(new URL('./kept-socket-child.ts', import.meta.url))

it('a socket kept after disconnect() lets its closed WebSocket be collected', async () => {
  expect(await childResult(child, [], { nodeFlags: ['--expose-gc'] })).toEqual({
    closed: true,
    collected: true,
    active: false,
  })
}, 30_000)
