// Two resumes of one session on a server without handshake middleware: the second waits for the
// first's turn, which lasts until the adapter has recorded the session's owner (at most
// OWNER_RECORD_WAIT_MS). That wait has a bound of its own, the server's handshakeTimeout: a turn
// ahead that holds on past it cannot hold the resume behind it for good.

import { PacketType } from '@parley/protocol'
import { type AdapterFactory, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { resumeOverWebSocket } from './ws-resume.js'

/** The server's handshakeTimeout: well under the owner record's wait, which the first turn takes. */
const BOUND = 200

const opened = closedAfterEach()

describe('a resume behind another resume of its session, without middleware', () => {
  it('is answered PARLEY_HANDSHAKE_TIMEOUT once it waited handshakeTimeout, the first one attaching', async () => {
    let records = 0
    // The owner record of the new session comes at once; those of its resumes never do (a store
    // that stopped answering), so the first resume holds its turn for the whole record wait.
    const factory: AdapterFactory = (sockets) =>
      Object.assign(new MemoryAdapter(sockets), {
        sessionOpened: () => (records++ === 0 ? undefined : new Promise<void>(() => {})),
      })
    opened.started = await startServer({ adapter: factory, handshakeTimeout: BOUND })
    const base = opened.started.base
    const first = await rawConnect('polling', base)
    opened.clients.push(first)
    const socket = [...opened.started.app.parley.sockets.values()][0]!
    const a = await resumeOverWebSocket(base, first.sid, 'a')
    await until(() => records === 2, 2000, 'the record of the first resume')
    const b = await resumeOverWebSocket(base, first.sid, 'b')
    // `ackId` 1: the server read the HELLO, and what was slow is its own (the client's
    // `details.middleware`), so the client tries the same transport again after its backoff.
    expect(await within(b.answer(), 5000, 'the answer to b')).toEqual({
      type: PacketType.ERROR,
      seq: 0,
      ackId: 1,
      code: 'PARLEY_HANDSHAKE_TIMEOUT',
      message: `an earlier resume of this session did not end within ${BOUND} ms`,
    })
    // The turn ahead ends as it would have: its resume attaches.
    expect((await within(a.answer(), 5000, 'the answer to a')).type).toBe(PacketType.OPEN)
    expect(socket.handshake.auth).toEqual({ name: 'a' })
    await a.close()
    await b.close()
  })
})
