import { buildChatApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '0.0.0.0'

const app = await buildChatApp({ logger: process.env.LOG === '1' })
await app.listen({ port, host })
console.log(`Parley chat: open http://localhost:${port} in two tabs.`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0))
  })
}
