import { parseArgs } from 'node:util'
import { buildChatApp } from './app.js'

// `pnpm demo --port 3001` or `PORT=3001 pnpm demo`; HOST=127.0.0.1 keeps it off the network.
const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } })
const portText = values.port ?? process.env.PORT ?? '3000'
const port = Number(portText)
const host = values.host ?? process.env.HOST ?? '0.0.0.0'
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Parley chat: the port must be a number from 0 to 65535, not "${portText}".`)
  process.exit(1)
}

const app = await buildChatApp({ logger: process.env.LOG === '1' })
try {
  await app.listen({ port, host })
} catch (error) {
  const code = (error as { code?: string }).code
  console.error(
    code === 'EADDRINUSE'
      ? `Parley chat: port ${port} is taken; start it on another one: pnpm demo --port ${port + 1}`
      : `Parley chat: cannot listen on ${host}:${port}: ${(error as Error).message}`,
  )
  process.exit(1)
}
const { port: bound } = app.server.address() as { port: number }
console.log(`Parley chat: open http://localhost:${bound} in two tabs (Ctrl+C stops it).`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0))
  })
}
