import { describe, expect, it } from 'vitest'
import { checkEncoded, decodeFrame, decodeText } from './decode.js'
import { encodeText } from './encode.js'
import { WireLimits } from './packets.js'

// Application nesting allowed inside `[5, seq, name, args, ackId]`: args is level 1.
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`
const event = (argsLevels: number) => `[5,1,"deep",${nested(argsLevels)},0]`

describe('nesting limit', () => {
  it('accepts a packet nested exactly to the limit', () => {
    const result = decodeText(event(WireLimits.maxDepth + 1))
    expect(result.ok).toBe(true)
  })

  it('refuses the shortest valid packet one level deeper, as text and as a binary frame header', () => {
    const text = event(WireLimits.maxDepth + 2)
    const result = decodeText(text)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.error.code).toBe('PARLEY_TOO_DEEP')
    const header = new TextEncoder().encode(text)
    const frame = new Uint8Array(4 + header.length)
    new DataView(frame.buffer).setUint32(0, header.length)
    frame.set(header, 4)
    const fromFrame = decodeFrame(frame)
    expect(fromFrame.ok).toBe(false)
    if (!fromFrame.ok) expect(fromFrame.error.code).toBe('PARLEY_TOO_DEEP')
  })

  it('calls unclosed nesting past the limit too deep, and short broken JSON invalid', () => {
    const deep = decodeText('['.repeat(WireLimits.maxDepth + 3))
    expect(deep.ok ? null : deep.error.code).toBe('PARLEY_TOO_DEEP')
    const broken = decodeText('[5,1,"x",[[[')
    expect(broken.ok ? null : broken.error.code).toBe('PARLEY_INVALID_JSON')
  })

  it('counts objects and arrays alike, and ignores brackets inside strings', () => {
    const levels = WireLimits.maxDepth + 2
    const mixed = `[5,1,"deep",[${'{"a":['.repeat(levels / 2)}${']}'.repeat(levels / 2)}],0]`
    const refused = decodeText(mixed)
    expect(refused.ok ? null : refused.error.code).toBe('PARLEY_TOO_DEEP')
    expect(checkEncoded(mixed, 1_000_000)?.code).toBe('PARLEY_TOO_DEEP')
    // Many brackets, but in strings or side by side: shallow, accepted on both sides.
    const wide = JSON.stringify([
      5,
      1,
      'wide',
      ['['.repeat(500), Array.from({ length: 200 }, () => ({ a: [] }))],
      0,
    ])
    expect(decodeText(wide).ok).toBe(true)
    expect(checkEncoded(wide, 1_000_000)).toBeUndefined()
  })

  it('takes a binary placeholder inside the deepest level (a path of 65 steps), both ways', () => {
    // `levels` arrays inside args, the placeholder in the innermost: a path of `levels` steps.
    const placed = (levels: number) =>
      `[5,1,"deep",${'['.repeat(levels)}null${']'.repeat(levels)},0,[[[${Array(levels).fill(0)}],0,"AQ=="]]]`
    const deepest = decodeText(placed(WireLimits.maxDepth + 1))
    expect(deepest.ok).toBe(true)
    const deeper = decodeText(placed(WireLimits.maxDepth + 2))
    expect(deeper.ok ? null : deeper.error.code).toBe('PARLEY_TOO_DEEP')
    // The encoder writes such a path: a leaf one step below the deepest container args may hold.
    let value: unknown = new Uint8Array([1])
    for (let i = 0; i < WireLimits.maxDepth; i++) value = [value]
    const text = encodeText({ type: 5, seq: 1, name: 'deep', args: [value as never], ackId: 0 })
    expect((JSON.parse(text) as unknown[][][][])[5]![0]![0]).toHaveLength(WireLimits.maxDepth + 1)
    expect(decodeText(text).ok).toBe(true)
  })
})
