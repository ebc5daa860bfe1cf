import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { startChild } from './child-process.js'

const child = fileURLToPath(new URL('./left-handshake-child.ts', import.meta.url))

/**
 * Runs the child in `mode`; resolves with how long (ms) the process lived on after the client
 * let go of a handshake that never answers. Without the transport clearing its timer (and
 * disconnect() ending an upgrade that has not gone through), that timer held the process for its
 * whole wait, 20 s there; an SSE or polling handshake (whose HELLO went) held it, by its request
 * and its timer, for the whole connectTimeout, 60 s there, and an upgraded WebSocket by its wait
 * for OPEN, as long, then by `ws`'s wait for the server's closing handshake (30 s): each now gets
 * a grace of 2 s. An auth function that never settled held it by the attempt's bound on it, the
 * whole connectTimeout too, though no HELLO went.
 */
async function lingers(
  mode: 'connecting' | 'upgraded' | 'sse' | 'polling' | 'probe' | 'paused' | 'auth',
): Promise<number> {
  const proc = await startChild(child, [mode], { mark: 'left' })
  try {
    expect(await proc.exit()).toBe(0)
    expect(proc.out).toContain('left')
    return proc.sinceMark()
  } finally {
    proc.kill()
  }
}

describe.concurrent('a handshake the client left', () => {
  it('holds no Node process open after disconnect() during a WebSocket upgrade', async () => {
    expect(await lingers('connecting')).toBeLessThan(10_000)
  })

  it('holds no Node process open for long after disconnect() once the WebSocket HELLO went', async () => {
    expect(await lingers('upgraded')).toBeLessThan(10_000)
  })

  it.each(['sse', 'polling'] as const)(
    'holds no Node process open for long after disconnect() once the %s HELLO went',
    async (mode) => {
      expect(await lingers(mode)).toBeLessThan(10_000)
    },
  )

  it('holds no Node process open once the client gave its probe up', async () => {
    expect(await lingers('probe')).toBeLessThan(10_000)
  })

  it('holds no Node process open after disconnect() during the pause before a slow middleware is tried again', async () => {
    expect(await lingers('paused')).toBeLessThan(10_000)
  })

  it('holds no Node process open after disconnect() while the auth function has not settled', async () => {
    expect(await lingers('auth')).toBeLessThan(10_000)
  })
}, 30_000)
