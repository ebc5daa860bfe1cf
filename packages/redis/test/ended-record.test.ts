// The record of how a session ended, as Redis keeps it for every node: it carries the route
// parameters the session opened under, and stays readable by and for nodes of an earlier version.

import { type ClosePacket, PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { packEnded, parseEnded } from '../src/wire.js'

const close: ClosePacket = { type: PacketType.CLOSE, reason: 'server disconnect', message: 'bye' }

describe('the record of an ended session', () => {
  it('keeps the route parameters the session opened under', () => {
    const text = packEnded({ close, ack: 3, params: { tenant: 'acme' } })
    expect(parseEnded(text)).toEqual({ close, ack: 3, params: { tenant: 'acme' } })
  })

  it('keeps the fields a node of an earlier version reads, as they were', () => {
    const record = JSON.parse(packEnded({ close, ack: 3, params: { tenant: 'acme' } })) as Record<
      string,
      unknown
    >
    expect(record).toMatchObject({ v: 1, c: '[1,"server disconnect","bye"]', a: 3 })
  })

  it('reads one a node of an earlier version wrote, without parameters', () => {
    const ending = parseEnded(JSON.stringify({ v: 1, c: '[1,"server disconnect","bye"]', a: 3 }))
    expect(ending).toEqual({ close, ack: 3 })
  })

  it('does not read one whose parameters are not an object of strings', () => {
    for (const p of [{ tenant: 1 }, ['acme'], 'acme', null]) {
      expect(
        parseEnded(JSON.stringify({ v: 1, c: '[1,"server disconnect","bye"]', a: 3, p })),
      ).toBeUndefined()
    }
  })
})
