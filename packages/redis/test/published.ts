// What a node's command is, told from its arguments as the fake cluster's `hold`, `lose` and
// `HeldInOrder` see them: the tests stage Redis holding, losing or running late one kind.

/** The PUBLISH of a broadcast (a claim marker among them; not a request, response or note). */
export const isBroadcast = (args: string[]) => args[0] === 'PUBLISH' && (args[1] ?? '').endsWith(':broadcast')
/** The PUBLISH of a request (a broadcast with acks, in these tests). */
export const isRequest = (args: string[]) => args[0] === 'PUBLISH' && (args[1] ?? '').endsWith(':request')
/** The PUBLISH of the node's note to itself that settles its own given up (its probe). */
export const isProbe = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"id":"probe"')
/** The PUBLISH of a claim marker. */
export const isMarker = (args: string[]) => isBroadcast(args) && (args[2] ?? '').includes('"k":"claim"')
