import type { FastifyInstance } from 'fastify'
import { ParleyOptionError } from './options.js'
import { ParleyServer } from './server.js'

/**
 * Parley decorates its context with `app.parley`, one server per context, and a child context
 * sees its parent's. A second registration where one is seen already would fail at that
 * decoration with Fastify's own "The decorator 'parley' has already been added!", which says
 * nothing of what to do, and only after the metrics and the adapter were made. Checked before
 * anything is touched: the error says where the first one is, and that each mount point takes a
 * context of its own (siblings, each with its own `path` and `app.parley`).
 */
export function checkRegisteredOnce(app: FastifyInstance, path: string): void {
  if (!app.hasDecorator('parley')) return
  const existing: unknown = app.parley
  const there =
    existing instanceof ParleyServer
      ? `Parley is registered already in this context or a parent of it (at "${existing.options.path}")`
      : "this context already has a 'parley' decorator"
  throw new ParleyOptionError(
    'path',
    `is "${path}", but ${there}, and a context holds one: register each mount point in a context of its own, siblings of each other (app.register(async (child) => { await child.register(parley, { path: '${path}' }) })), each with its own child.parley`,
  )
}
