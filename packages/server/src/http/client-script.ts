import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ifNoneMatchNames } from './if-none-match.js'

/**
 * Serves the browser client (`@parley/client`'s `parley.min.js`) at `<base>/parley.min.js`, as
 * socket.io serves its own: a page includes it with a script tag and needs no build step. The
 * file is read once, on the first request; an ETag lets browsers and caches revalidate it
 * cheaply after an upgrade (`If-None-Match` compared as RFC 9110 says: see if-none-match.ts). Without `@parley/client` installed the route is not there (logged at debug).
 * Returns the script's URL, or undefined when it is not served.
 */
export function serveClientScript(
  app: FastifyInstance,
  base: string,
  errorHandler: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => unknown,
): string | undefined {
  let path: string
  try {
    path = createRequire(import.meta.url).resolve('@parley/client/parley.min.js')
  } catch (err) {
    app.log.debug({ err }, 'parley: @parley/client is not installed; not serving parley.min.js')
    return undefined
  }
  let script: Promise<{ body: Buffer; etag: string }> | undefined
  const load = () => {
    script ??= readFile(path).then((body) => ({
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    }))
    script.catch(() => {
      script = undefined
    })
    return script
  }
  const url = `${base}/parley.min.js`
  app.get(url, { errorHandler }, async (request, reply) => {
    const { body, etag } = await load()
    reply.headers({
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=0, must-revalidate',
      ETag: etag,
    })
    if (ifNoneMatchNames(request.headers['if-none-match'], etag)) return reply.code(304).send()
    return reply.send(body)
  })
  return url
}
