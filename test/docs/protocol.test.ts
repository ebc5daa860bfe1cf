// docs/protocol.md is enough to write a client in another language: its tables of packet types
// and WebSocket close codes must be those of @parley/protocol, number for number.
import { PacketType, WsCloseCode } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { read, tableUnder } from './markdown.js'

const doc = read('docs/protocol.md')

describe('docs/protocol.md', () => {
  it('numbers the packet types as PacketType does', () => {
    const [, ...rows] = tableUnder(doc, 'Packets')
    const shown = rows.map(([type, name]) => [name, Number(type)])
    expect(Object.fromEntries(shown)).toEqual(PacketType)
  })

  it('gives every WebSocket close code of WsCloseCode its row, and no other', () => {
    const [, ...rows] = tableUnder(doc, 'WebSocket close codes')
    const shown = rows.map(([code, name = '']) => [name.replaceAll('`', ''), Number(code)])
    expect(Object.fromEntries(shown)).toEqual(WsCloseCode)
  })
})
