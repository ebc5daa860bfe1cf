import { decodeText, type Packet } from '@parley/protocol'

/** The packets of a poll's answer (lines) or of an event stream (`data:` lines), in order. */
export function packetsOf(text: string): Packet[] {
  return text
    .split('\n')
    .map((line) => (line.startsWith('data: ') ? line.slice(6) : line))
    .filter((line) => line.startsWith('['))
    .map((line) => {
      const decoded = decodeText(line)
      if (!decoded.ok) throw decoded.error
      return decoded.packet
    })
}
