// A POST body read line by line: the lines are what splitting the whole body's text gives,
// however the body was cut into chunks on its way in, and however long it is.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { allUtf8, BodyReader, linesOf, readBody } from './body.js'

const expected = (text: string) => text.split('\n')

/** `text` long enough to be read a chunk at a time (64 KiB and more), ending as it ended. */
const long = (text: string) => `[${'x'.repeat(64 * 1024)}]\n${text}`

/** `bytes` cut at the given offsets. */
const cut = (bytes: Buffer, at: readonly number[]) =>
  [0, ...at, bytes.length].slice(1).map((end, i) => bytes.subarray([0, ...at][i], end))

describe('the lines of a body', () => {
  it('reads lines within one chunk, empty ones and a final newline as splitting reads them', () => {
    const text = '[2]\n\n[4,3]\n[5,1,"a",[],0]\n'
    expect(linesOf([Buffer.from(text)])).toEqual(expected(text))
    expect(linesOf([Buffer.from('[2]')])).toEqual(['[2]'])
    expect(linesOf([])).toEqual([''])
  })

  it('joins a line begun in one chunk and ended two chunks later', () => {
    const text = long('[2]\n[5,1,"long",["abcdefghij"],0]\n[4,1]')
    const at = text.indexOf('[2]')
    expect(linesOf(cut(Buffer.from(text), [at + 8, at + 16, at + 30]))).toEqual(expected(text))
  })

  it('decodes a character whose UTF-8 bytes arrive in two chunks', () => {
    const text = long('["€😀"]\n["ü"]')
    const at = Buffer.byteLength(text) - Buffer.byteLength('["€😀"]\n["ü"]')
    // The euro sign is bytes 2 to 4 of the line; the emoji 5 to 8; ü 13 and 14.
    expect(linesOf(cut(Buffer.from(text), [at + 3, at + 6, at + 7, at + 14]))).toEqual(expected(text))
  })

  it('decodes bad UTF-8 as the whole body would', () => {
    const bytes = Buffer.concat([
      Buffer.from(long('')),
      Buffer.from([0x5b, 0xe2, 0x82, 0x0a, 0xff, 0x5d, 0x0a, 0xc3]),
    ])
    const at = bytes.length - 8
    expect(linesOf(cut(bytes, [at + 2, at + 5]))).toEqual(expected(bytes.toString('utf8')))
  })

  it('gives what splitting gives for any cut of a body, short or long', () => {
    const short = ['[2]', '', '["é€😀"]', 'x'.repeat(70), '[4,12]', '', ''].join('\n')
    for (const text of [short, long(short), `${long(short)}\n`]) cutsOf(text)
  })

  const cutsOf = (text: string) => {
    const bytes = Buffer.from(text)
    const tailFrom = Math.max(0, bytes.length - 200)
    // A fixed pseudo-random sequence of cuts, so that a failure can be replayed.
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed
    }
    for (let round = 0; round < 200; round++) {
      // Cuts anywhere, and as many again in the last 200 bytes, where the short lines are.
      const anywhere = Array.from({ length: next() % 4 }, () => next() % bytes.length)
      const nearEnd = Array.from(
        { length: next() % 4 },
        () => tailFrom + (next() % (bytes.length - tailFrom)),
      )
      const at = [...new Set([...anywhere, ...nearEnd])].sort((a, b) => a - b)
      expect(linesOf(cut(bytes, at)), `cut at ${at}`).toEqual(expected(text))
    }
  }
})

describe('reading a body', () => {
  it('gives its lines and, when asked, its whole text', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 100)
    stream.write('[2]\n[5,1,"a"')
    stream.end(',[],0]\n')
    const body = await reading
    expect(body.ok && body.lines()).toEqual(['[2]', '[5,1,"a",[],0]', ''])
    expect(body.ok && body.text()).toBe('[2]\n[5,1,"a",[],0]\n')
  })

  it('gives the same lines and text when it comes in many small pieces among large ones', async () => {
    const text = long('[2]\n[5,1,"€😀",["abcdefghij"],0]\n[4,1]\n') + 'y'.repeat(3000)
    const bytes = Buffer.from(text)
    // One byte at a time, then a chunk of 2 000, and so on: runs of small pieces are joined.
    const pieces: Buffer[] = []
    for (let at = 0; at < bytes.length; ) {
      const size = pieces.length % 50 === 49 ? 2000 : 1
      pieces.push(bytes.subarray(at, at + size))
      at += size
    }
    const stream = new PassThrough()
    const reading = readBody(stream, bytes.length)
    for (const piece of pieces) stream.write(piece)
    stream.end()
    const body = await reading
    expect(body.ok && body.lines()).toEqual(expected(text))
    expect(body.ok && body.text()).toBe(text)
  })

  it('stops past the limit', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 5)
    stream.write('[2]\n[4,')
    expect(await reading).toEqual({ ok: false, reason: 'too large' })
  })

  it("gives up a body during which nothing arrives for the reader's time, not one that keeps coming", async () => {
    const reader = new BodyReader(100, 200)
    const steady = new PassThrough()
    const stalled = new PassThrough()
    const steadyReading = reader.read(steady)
    const stalledReading = reader.read(stalled)
    stalled.write('[2]\n')
    for (let i = 0; i < 15; i++) {
      steady.write('[2]\n')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    steady.end()
    expect(await stalledReading).toEqual({ ok: false, reason: 'stalled' })
    const body = await steadyReading
    expect(body.ok && body.lines().length).toBe(16)
  })

  it('gives up every read at close, and any later one', async () => {
    const reader = new BodyReader(100, 60_000)
    const stream = new PassThrough()
    const reading = reader.read(stream)
    stream.write('[2]\n')
    reader.close()
    expect(await reading).toEqual({ ok: false, reason: 'closing' })
    expect(await reader.read(new PassThrough())).toEqual({ ok: false, reason: 'closing' })
  })
})

describe('whether a body is UTF-8', () => {
  const good = Buffer.from('a€😀ü\n[1]')
  const bad = [
    [0xff],
    [0xc3, 0x28],
    [0xe2, 0x82],
    [0xed, 0xa0, 0x80],
    [0xc0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x80],
  ].map((bytes) => Buffer.concat([Buffer.from('[5,"'), Buffer.from(bytes), Buffer.from('"]')]))

  it('reads it as the whole body would be read, however it was cut into chunks', () => {
    for (let i = 0; i <= good.length; i++) {
      for (let j = i; j <= good.length; j++) expect(allUtf8(cut(good, [i, j]))).toBe(true)
    }
    for (const body of bad) {
      for (let i = 0; i <= body.length; i++) {
        for (let j = i; j <= body.length; j++) expect(allUtf8(cut(body, [i, j]))).toBe(false)
      }
    }
  })

  it('refuses a body that ends within a character', () => {
    expect(allUtf8([Buffer.from('ab'), Buffer.from([0xf0, 0x9f])])).toBe(false)
    expect(allUtf8([Buffer.from([0xf0]), Buffer.from([0x9f]), Buffer.from([0x98])])).toBe(false)
  })

  it('is told with the body, which keeps every byte as it came', async () => {
    const stream = new PassThrough()
    const reading = readBody(stream, 1000)
    stream.end(bad[0])
    const body = await reading
    expect(body.ok && body.utf8).toBe(false)
  })
})
