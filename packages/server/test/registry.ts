// prom-client for the tests of the other packages, which do not depend on it themselves, and
// how every test reads a sample.
import type { Registry } from 'prom-client'

export { Registry } from 'prom-client'

/** The value of `name`'s sample with exactly `labels` in `registry` (0 when there is none). */
export async function sampleOf(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)
  if (!metric) throw new Error(`no metric ${name}`)
  const sample = metric.values.find(
    (v) =>
      Object.keys(v.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  )
  return sample?.value ?? 0
}
