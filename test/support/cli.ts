import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import { ROOT } from './process.js';

export interface Cli {
  stdout: () => string;
  stderr: () => string;
  /** Its exit code, once it exited and everything it wrote has been read. */
  exited: Promise<number | null>;
  signal: (signal: NodeJS.Signals) => void;
}

/**
 * `runstate …` as its own process, with only PATH and the given environment: the CLI as bundled
 * from src/ at the start of this run (test/support/global-setup.ts), run by plain `node`, so a
 * process does not spend seconds of CPU having tsx transpile its sources.
 */
export function runCli(args: string[], env: Record<string, string>): Cli {
  const bundle = inject('cliBundle');
  if ('error' in bundle) throw new Error(`the CLI did not bundle from src/: ${bundle.error}`);
  const child = spawn(process.execPath, [bundle.file, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    // 'close', not 'exit': by then everything it wrote has been read.
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    signal: (signal) => child.kill(signal),
  };
}

/** A CLI process once it exited: its exit code and everything it wrote. */
export async function finished(
  cli: Cli,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const code = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}
