// One request through `node:http`, as a client other than Parley's would send it.
import { request as httpRequest } from 'node:http'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: { code?: unknown; message?: unknown }
}

/** One request on a connection of its own; its answer, the body as JSON (when it is JSON). */
export function exchange(
  url: string,
  method: string,
  headers: Record<string, string>,
  body = '',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => {
        const json = res.headers['content-type']?.startsWith('application/json')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json ? JSON.parse(text) : {} })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}
