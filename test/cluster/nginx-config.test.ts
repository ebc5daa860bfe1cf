// docs/scaling.md shows the nginx configuration the cluster tests run: the generator's output,
// word for word, so that the two cannot drift apart.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { nginxConfig } from '../support/nginx.js'

describe('the nginx configuration in docs/scaling.md', () => {
  it('is what test/support/nginx.ts generates', () => {
    const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8')
    const shown = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1]
    const generated = nginxConfig({
      dir: '/var/lib/parley-nginx',
      host: '0.0.0.0',
      port: 80,
      upstreamPorts: [3001, 3002, 3003],
    })
    expect(shown).toBe(generated)
  })

  it('balances round-robin, with nothing sticky and nothing buffered', () => {
    const conf = nginxConfig({ dir: '/d', host: '127.0.0.1', port: 8080, upstreamPorts: [1, 2] })
    const directives = conf.replace(/#.*$/gm, '')
    expect(directives).not.toMatch(/ip_hash|sticky|\bhash\b|least_conn/)
    expect(conf).toMatch(/proxy_buffering off;/)
    expect(conf).toMatch(/proxy_request_buffering off;/)
    for (const path of ['pid', 'error_log', 'access_log', 'client_body_temp_path', 'proxy_temp_path']) {
      expect(conf).toMatch(new RegExp(`${path} /d/`))
    }
  })
})
