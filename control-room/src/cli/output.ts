/** Prints machine-readable JSON with --json, else the human lines. */
export function output(json: boolean | undefined, data: unknown, human: string | string[]): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${([] as string[]).concat(human).join('\n')}\n`);
}
