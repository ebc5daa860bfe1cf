import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { logLine } from '../burst-log.js'
import { ifNoneMatchNames } from './if-none-match.js'

/**
 * Serves the browser client (`@parley/client`'s `parley.min.js`) at `<base>/parley.min.js`, as
 * socket.io serves its own: a page includes it with a script tag and needs no build step. The
 * file is read once, on the first request; an ETag lets browsers and caches revalidate it
 * cheaply after an upgrade (`If-None-Match` compared as RFC 9110 says: see if-none-match.ts).
 * Without `@parley/client` installed the route is not there (see `notInstalled`).
 * Returns the script's URL, or undefined when it is not served.
 */
export function serveClientScript(
  app: FastifyInstance,
  base: string,
  errorHandler: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => unknown,
  asked: boolean,
  resolve: () => string = clientScriptPath,
): string | undefined {
  let path: string
  try {
    path = resolve()
  } catch (err) {
    notInstalled(app, asked, err)
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

/** Where the installed `@parley/client` keeps its browser bundle; throws when it is not installed. */
function clientScriptPath(): string {
  return createRequire(import.meta.url).resolve('@parley/client/parley.min.js')
}

/**
 * `@parley/client` is not installed, so `parley.min.js` is not served (a page that loads it gets
 * 404). On by default, `serveClient` says nothing of what the application wants: a server whose
 * clients are Node processes or a bundler's build never needs the file, and would otherwise warn
 * at every start, so that is said at debug. Set to true by the application (`asked`), it says a
 * page loads the file from here: that warns, once, at startup.
 */
function notInstalled(app: FastifyInstance, asked: boolean, err: unknown): void {
  if (asked) {
    logLine(
      app.log,
      'warn',
      { err },
      'parley: serveClient is true but @parley/client is not installed; parley.min.js is not served (a page that loads it gets 404): install @parley/client beside @parley/server, or leave serveClient out',
    )
  } else {
    logLine(app.log, 'debug', { err }, 'parley: @parley/client is not installed; not serving parley.min.js')
  }
}
