// A small base64 codec that works the same in browsers and Node without Buffer or btoa, and
// reports bad input instead of throwing.

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const lookup = new Int16Array(128).fill(-1)
for (let i = 0; i < alphabet.length; i++) lookup[alphabet.charCodeAt(i)] = i

/** Encodes bytes as canonical, padded base64 (what `fromBase64` reads back). */
export function toBase64(bytes: Uint8Array): string {
  const parts: string[] = []
  let chunk = ''
  const full = bytes.length - (bytes.length % 3)
  for (let i = 0; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    chunk += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!
    // Keep string ropes short so large payloads do not build deep concatenation trees.
    if (chunk.length >= 8192) {
      parts.push(chunk)
      chunk = ''
    }
  }
  const rest = bytes.length - full
  if (rest === 1) {
    const n = bytes[full]! << 16
    chunk += `${alphabet[n >> 18]}${alphabet[(n >> 12) & 63]}==`
  } else if (rest === 2) {
    const n = (bytes[full]! << 16) | (bytes[full + 1]! << 8)
    chunk += `${alphabet[n >> 18]}${alphabet[(n >> 12) & 63]}${alphabet[(n >> 6) & 63]}=`
  }
  parts.push(chunk)
  return parts.join('')
}

/** Decodes canonical, padded base64. Returns `undefined` for anything else. */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined
  let padding = 0
  if (text.endsWith('==')) padding = 2
  else if (text.endsWith('=')) padding = 1
  const out = new Uint8Array((text.length / 4) * 3 - padding)
  let o = 0
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length
    const a = sextet(text, i)
    const b = sextet(text, i + 1)
    const c = last && padding === 2 ? 0 : sextet(text, i + 2)
    const d = last && padding >= 1 ? 0 : sextet(text, i + 3)
    if ((a | b | c | d) < 0) return undefined
    const n = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = n >> 16
    if (o < out.length) out[o++] = (n >> 8) & 255
    if (o < out.length) out[o++] = n & 255
  }
  return out
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index)
  return code < 128 ? lookup[code]! : -1
}
