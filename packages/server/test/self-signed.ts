// The test certificate for 127.0.0.1 (self-signed, in fixtures/, valid to 2126), for servers
// over TLS: HTTP/2 in browsers needs it. Read from the repository rather than made at test time,
// so the suites need no openssl on the machine.
import { readFileSync } from 'node:fs'

/** The fixture's key and certificate (PEM) for `127.0.0.1` and `localhost`. */
export function selfSigned(): { key: Buffer; cert: Buffer } {
  const at = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
  return { key: at('node-tls.key'), cert: at('node-tls.crt') }
}
