import { type ChildProcess, fork } from 'node:child_process'

/**
 * Forks the compiled `script` (`name` in messages) and resolves once it sends `{ ready }`; kills it
 * when it exits first or does not start within 30 s. The child stays in `children` until it
 * exits, so that the parent can kill what is left when it ends.
 */
export function forkReady(
  script: string,
  name: string,
  args: string[],
  execArgv: string[],
  cwd: string,
  children: Set<ChildProcess>,
): Promise<{ child: ChildProcess; ready: unknown }> {
  const child = fork(script, args, { cwd, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start in 30 s`)), 30_000)
    const fail = (err: Error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.once('exit', (code) => fail(new Error(`${name} exited with ${code} before it was ready`)))
    child.on('message', function onReady(message: unknown) {
      if (typeof message === 'object' && message !== null && 'ready' in message) {
        clearTimeout(timer)
        child.off('message', onReady)
        child.removeAllListeners('exit')
        child.once('exit', () => children.delete(child))
        resolve({ child, ready: (message as { ready: unknown }).ready })
      }
    })
  })
}
