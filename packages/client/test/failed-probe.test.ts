// A probe that failed once its HELLO was ready leaves its mark on the transport in use (a MOVED
// that may follow there is then the server taking that probe): the connection held that
// transport, closed, with its streams and what they held, once it had moved on (to WebSocket, or
// to nothing after disconnect()) for as long as the application kept the socket.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { within } from '../../server/test/helpers.js'

const child = fileURLToPath(new URL('./failed-probe-child.ts', import.meta.url))

async function run(mode: 'kept' | 'climbed'): Promise<unknown> {
  const proc = spawn(process.execPath, ['--expose-gc', await compiledScript(child), mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  try {
    const code = await within(
      new Promise((resolve) => proc.on('exit', resolve)),
      15_000,
      `the process to exit (stderr: ${err})`,
    )
    expect(code, err).toBe(0)
    return JSON.parse(out)
  } finally {
    proc.kill()
  }
}

describe.concurrent('the SSE transport in use when a WebSocket probe failed', () => {
  it('can be collected once disconnect() let it go, the socket kept', async () => {
    expect(await run('kept')).toEqual({ transport: null, collected: true, active: false })
  })

  it('can be collected once the next probe took the session onto WebSocket', async () => {
    expect(await run('climbed')).toEqual({ transport: 'websocket', collected: true, active: true })
  })
}, 30_000)
