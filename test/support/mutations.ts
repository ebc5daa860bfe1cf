// The edits a fuzzer makes to valid wire input, as fast-check arbitraries: the hostile-peer
// tests of the server and of the client start from packets each side really sends.
import fc from 'fast-check'

/** One of `lines` with a random edit: up to 6 random characters put in somewhere, up to 6 cut. */
export function mutatedLine(lines: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...lines), fc.nat(), fc.string({ maxLength: 6 }), fc.nat({ max: 6 }))
    .map(([text, at, insert, cut]) => {
      const i = at % (text.length + 1)
      return text.slice(0, i) + insert + text.slice(i + cut)
    })
}

/** One of `frames` (binary WebSocket frames) with one byte changed and maybe its end cut. */
export function mutatedFrame(frames: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...frames), fc.nat(), fc.nat({ max: 255 }), fc.nat({ max: 8 }))
    .map(([frame, at, byte, cut]) => {
      const copy = Uint8Array.from(frame)
      copy[at % copy.length] = byte
      return copy.subarray(0, copy.length - (cut % copy.length))
    })
}
