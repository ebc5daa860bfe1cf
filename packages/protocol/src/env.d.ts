// The protocol package runs in browsers and in Node alike, so it compiles against the ES
// library only. These two encoders are the only platform APIs it uses; both runtimes have them.
declare class TextEncoder {
  encode(input?: string): Uint8Array
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean })
  decode(input?: Uint8Array): string
}
// Timers, for the ack table's timeouts: both runtimes have them. The handle is opaque here.
declare function setTimeout(callback: () => void, ms: number): unknown
declare function clearTimeout(handle: unknown): void
