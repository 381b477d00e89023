import { spawn, type ChildProcess } from 'node:child_process';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface ServiceProcess {
  child: ChildProcess;
  /** The GraphQL URL, once the process logged that it listens. */
  listening: Promise<string>;
  /** Its exit code. */
  exited: Promise<number | null>;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output(): string;
}

/**
 * Run a TypeScript entry point of the project as its own process (through tsx, as `npm start`
 * runs the compiled one), with only PATH and the given environment.
 */
export function startProcess(
  env: Record<string, string>,
  args: string[] = ['src/main.ts'],
): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 30 s:\n${output}`)), 30_000);
    child.stdout!.on('data', () => {
      const match = /"url":"(http:[^"]+)"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => reject(new Error(`exited before listening:\n${output}`)));
  });
  listening.catch(() => {}); // awaited only by tests that expect a start
  return { child, listening, exited, output: () => output };
}
