// A resume the adapter cannot settle (its store is away: `claimSession` resolves 'retry') is
// told to try again, the client keeping its session, for at most the recovery window; after
// that the session cannot be alive anywhere, and the resume gets a new one.
import { ErrorCode } from '@parley/protocol'
import { type Adapter, MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closeApp, sleep, startServer } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'

const SID = 'V1StGXR8_Z5jdHi6B-myT'
const WINDOW = 600

/** The in-memory adapter, with a store that cannot be asked whether any session was handed off. */
class StoreAway extends MemoryAdapter implements Adapter {
  claims = 0
  async claimSession(): Promise<'retry'> {
    this.claims++
    return 'retry'
  }
}

describe.each(['websocket', 'polling'] as const)('over %s', (transport) => {
  it('tells a resume the store cannot settle to try again, for the recovery window, then opens a new session', async () => {
    let adapter: StoreAway | undefined
    const { app, base } = await startServer({
      recovery: { window: WINDOW },
      adapter: (sockets) => (adapter = new StoreAway(sockets)),
    })
    const opened: RawClient[] = []
    const refusal = (attempt: Promise<RawClient>) =>
      attempt.then(
        (c) => {
          opened.push(c)
          return 'opened'
        },
        (err: unknown) => (err instanceof Refused ? err.code : String(err)),
      )
    try {
      expect(await refusal(rawConnect(transport, base, { sid: SID, ack: 0 }))).toBe(
        ErrorCode.SERVER_SHUTTING_DOWN,
      )
      // The server's window began before this.
      const first = performance.now()
      await sleep(WINDOW / 3)
      expect(await refusal(rawConnect(transport, base, { sid: SID, ack: 0 }))).toBe(
        ErrorCode.SERVER_SHUTTING_DOWN,
      )
      // A new session is no business of the store's.
      opened.push(await rawConnect(transport, base))
      expect(opened[0]!.open.recovered).toBe(false)
      await sleep(WINDOW - (performance.now() - first) + 20)
      const late = await rawConnect(transport, base, { sid: SID, ack: 0 })
      opened.push(late)
      expect(late.open.recovered).toBe(false)
      expect(late.sid).not.toBe(SID)
      expect(adapter!.claims).toBe(3)
    } finally {
      for (const c of opened) c.close()
      await closeApp(app)
    }
  })
})
