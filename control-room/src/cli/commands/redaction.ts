import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { OrderlyError, evaluateRedaction, formatEvalReport, parseEvalJsonl, scanEvalLines } from '@orderly/shared';

const FORMAT = `Each line of FILE is JSON: {"text": "...", "spans": [{"start": 0, "end": 11, "label": "SSN"}]},
optionally with "declared": ["value", ...] (values declared as PHI for that text, which turns on
the value layer). Offsets are JavaScript string units (UTF-16), end exclusive.`;

async function readLines(file: string) {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    // The path is the caller's own argument; the file's content is never echoed.
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new OrderlyError('ORDERLY_E_REDACTION_INPUT_INVALID', `cannot read ${file}: ${reason}`, { file, reason });
  }
  return parseEvalJsonl(content);
}

/** `orderly redaction eval|scan FILE`: measure the redactor on a labelled JSONL file. */
export function redactionCommand(write: (text: string) => void = (text) => void process.stdout.write(text)): Command {
  const command = new Command('redaction').description('Measure PHI redaction on labelled text (the pattern layer, plus declared values where given)');

  command
    .command('eval')
    .description('Redact each line and print, per label and overall, character recall, span recall and precision')
    .argument('<file>', 'JSONL file of labelled texts')
    .option('--json', 'print the figures as JSON instead of a table')
    .addHelpText(
      'after',
      `\n${FORMAT}\n\ncharacter recall: share of PHI characters masked; span recall: share of spans masked entirely;\nprecision: share of masked characters that were PHI. Run "redaction scan" to check them with a scorer of your own.`,
    )
    .action(async (file: string, options: { json?: boolean }) => {
      const report = evaluateRedaction(await readLines(file));
      write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatEvalReport(report));
    });

  command
    .command('scan')
    .description('Print, one JSON line per input line, the spans the redactor would mask: {"spans": [{"start", "end", "label"}]}')
    .argument('<file>', 'JSONL file of texts (spans in it are ignored)')
    .addHelpText('after', `\n${FORMAT}`)
    .action(async (file: string) => {
      const results = scanEvalLines(await readLines(file));
      write(results.map((r) => JSON.stringify({ spans: r.spans })).join('\n') + (results.length > 0 ? '\n' : ''));
    });

  return command;
}
