import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { maskSessionIds, redactingRequestSerializer } from './log-redaction.js'

/*
 * A URL under Parley's path that no route serves (a mistyped endpoint, `/parley/pol?sid=...`)
 * still carries whatever session id the client put in it. Fastify answers it with its default
 * 404 and logs it with the application's serializer, the URL whole: its `incoming request` line
 * and its `Route GET:... not found` line would write a live secret into the application's logs.
 * So Parley answers the 404s under its own path as Fastify does, with the session id masked in
 * both lines (see log-redaction.ts). Elsewhere the URLs are the application's, and so are their
 * 404s; with `path: '/'` every URL would be, so Parley then leaves them all alone.
 */

/** Registers the 404 answer of the URLs under `base` (`mountBase`), when there is a base. */
export async function notFoundUnder(app: FastifyInstance, base: string): Promise<void> {
  if (base === '') return
  await app.register(
    async (scope) => {
      const masked = redactingRequestSerializer(scope.log)
      const inherited = scope.childLoggerFactory
      // The 404 context takes no `logSerializers`: its request loggers are made masking here.
      scope.setChildLoggerFactory(function (this: FastifyInstance, logger, bindings, options, request) {
        const serializers = { ...options.serializers, req: masked }
        return inherited.call(this, logger, bindings, { ...options, serializers }, request)
      })
      scope.setNotFoundHandler(notFound)
    },
    { prefix: base },
  )
}

/** Fastify's default 404, its log line with the session id masked. */
function notFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { method, url = '' } = request.raw
  if (!requestLoggingDisabled(request)) request.log.info(`Route ${method}:${maskSessionIds(url)} not found`)
  return reply
    .code(404)
    .send({ message: `Route ${method}:${url} not found`, error: 'Not Found', statusCode: 404 })
}

/**
 * Whether the application turned Fastify's request lines off (for this request) with its
 * `disableRequestLogging`. A `logController` of its own is out of a plugin's reach: this line
 * goes to the request's logger as Fastify's default controller writes it.
 */
function requestLoggingDisabled(request: FastifyRequest): boolean {
  const disabled: unknown = request.server.initialConfig.disableRequestLogging
  return typeof disabled === 'function' ? Boolean(disabled(request)) : disabled === true
}
