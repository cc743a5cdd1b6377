import type { Hook } from '@oclif/core';
import levenshtein from 'fast-levenshtein';
import { EXIT, ModelprintError } from '../errors.js';
import { c } from '../ui/colour.js';

/** The visible command (or alias) closest to `id` by edit distance, as oclif's plugin-not-found picks it. */
export function closestCommand(id: string, candidates: string[]): string | undefined {
  let best: { id: string; d: number } | undefined;
  for (const cand of candidates) {
    const d = levenshtein.get(id, cand, { useCollator: true });
    if (!best || d < best.d) best = { id: cand, d };
  }
  // A suggestion further away than half the typed word is noise, not a typo.
  return best && best.d <= Math.max(2, Math.ceil(id.length / 2)) ? best.id : undefined;
}

/**
 * command_not_found: `modelprint matrx` says what it would for any usage error — one line
 * `error [E_USAGE] …` with a hint naming the closest command, `{"ok":false,…}` with --json,
 * exit 2 — instead of oclif's own format. (The suggestion uses the same distance as
 * @oclif/plugin-not-found; its interactive "Did you mean …?" prompt is left out so that a
 * typo in a script fails fast.)
 */
const hook: Hook<'command_not_found'> = async function (opts) {
  const hidden = new Set(opts.config.commands.filter((cmd) => cmd.hidden).map((cmd) => cmd.id));
  const ids = [...opts.config.commandIDs, ...opts.config.commands.flatMap((cmd) => cmd.aliases)].filter((x) => !hidden.has(x));
  const typed = opts.id.split(':').join(' ');
  const suggestion = closestCommand(opts.id, ids);
  const readable = suggestion?.split(':').join(' ');
  const e = new ModelprintError('E_USAGE', `"${typed}" is not a modelprint command`, {
    subject: typed,
    hint: readable ? `did you mean \`modelprint ${readable}\`? See \`modelprint help\` for all commands` : 'see `modelprint help` for all commands',
    exitCode: EXIT.usage,
  });
  if ((opts.argv ?? []).includes('--json')) process.stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
  process.stderr.write(`${c.red('error', process.stderr)} [${e.code}] ${e.message} (hint: ${e.hint})\n`);
  process.exitCode = e.exitCode;
};

export default hook;
