// A socket the application keeps after disconnect() (for a later connect()) must not keep the
// transport of its last attempt: the connection held it (to let it go at disconnect(), see
// Transport.leave) long after that attempt had opened, with its WebSocket and everything it held.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { within } from '../../server/test/helpers.js'

const child = fileURLToPath(new URL('./kept-socket-child.ts', import.meta.url))

it('a socket kept after disconnect() lets its closed WebSocket be collected', async () => {
  const proc = spawn(process.execPath, ['--expose-gc', await compiledScript(child)], {
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
    expect(JSON.parse(out)).toEqual({ closed: true, collected: true, active: false })
  } finally {
    proc.kill()
  }
}, 30_000)
