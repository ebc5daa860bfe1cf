// The CLOSE message kept for an ended session is cut to MAX_ENDED_MESSAGE, never inside a
// character: the client shows what it reads back.
import { type ClosePacket, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { cutMessage, MAX_ENDED_MESSAGE } from '../src/ended.js'
import { packEnded, parseEnded } from '../src/wire.js'

/** No lone surrogate: what UTF-8 carries as it is (a lone one comes back as U+FFFD). */
function wellFormed(text: string): boolean {
  return Buffer.from(text, 'utf8').toString('utf8') === text
}

describe('the CLOSE message of an ended session', () => {
  it('is kept whole when it fits', () => {
    const message = `${'x'.repeat(MAX_ENDED_MESSAGE - 2)}😀`
    expect(cutMessage('bye')).toBe('bye')
    expect(cutMessage(message)).toBe(message)
  })

  it('is cut at the limit, before a character the limit would split', () => {
    const ascii = 'x'.repeat(MAX_ENDED_MESSAGE + 10)
    expect(cutMessage(ascii)).toBe('x'.repeat(MAX_ENDED_MESSAGE))
    // The emoji's two UTF-16 units straddle the limit: it is left out whole.
    const straddling = `${'x'.repeat(MAX_ENDED_MESSAGE - 1)}😀 and more`
    const cut = cutMessage(straddling)
    expect(cut).toBe('x'.repeat(MAX_ENDED_MESSAGE - 1))
    expect(wellFormed(cut)).toBe(true)
    // Just inside the limit: kept.
    const inside = `${'x'.repeat(MAX_ENDED_MESSAGE - 2)}😀 and more`
    expect(cutMessage(inside)).toBe(`${'x'.repeat(MAX_ENDED_MESSAGE - 2)}😀`)
    // Only emoji: every cut is at a pair's edge, within the limit.
    const emoji = '😀'.repeat(MAX_ENDED_MESSAGE)
    expect(cutMessage(emoji)).toBe('😀'.repeat(MAX_ENDED_MESSAGE / 2))
    for (const text of [ascii, straddling, inside, emoji]) {
      const kept = cutMessage(text)
      expect(kept.length).toBeLessThanOrEqual(MAX_ENDED_MESSAGE)
      expect(wellFormed(kept)).toBe(true)
      const close: ClosePacket = { type: PacketType.CLOSE, reason: 'server disconnect', message: kept }
      expect(parseEnded(packEnded({ close, ack: 1 }))?.close.message).toBe(kept)
    }
  })
})
