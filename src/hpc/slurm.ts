/**
 * `modelprint slurm script`: an sbatch array script for a shardable modelprint command,
 * a merge job that runs after every task succeeded (afterok), and a submit script.
 *
 * Time limits: the array script asks Slurm for `--signal=B:TERM@<s>`, so the batch shell
 * gets SIGTERM <s> seconds before the limit. Its trap forwards it to modelprint, which
 * finishes the model it is on, saves it and exits 143; the script then requeues its own
 * task (`scontrol requeue`), which starts again later and resumes from what was saved.
 * The same SIGTERM from `scancel` (job no longer RUNNING) stops the task without a
 * requeue. Logs are opened in append mode, so a requeued task's log continues.
 */
import path from 'node:path';
import { ModelprintError } from '../errors.js';

export interface SlurmScriptOptions {
  /** The modelprint command and its arguments, e.g. ['sketch', '--probes', 'bank.json', …]. */
  command: string[];
  array: number;
  /** At most this many tasks at once (`%N`). */
  maxParallel?: number;
  time?: string;
  cpus?: number;
  gpus?: number;
  mem?: string;
  partition?: string;
  account?: string;
  jobName?: string;
  /** Log file pattern of the array tasks (sbatch --output). */
  output: string;
  /** Seconds before the time limit at which the task is told to stop and requeue. */
  signalSeconds: number;
  /** Working directory of the jobs (absolute). */
  workdir: string;
  /** Node binary and modelprint entry point (absolute). */
  node: string;
  modelprint: string;
  /** Merge command (modelprint arguments) or null for none. */
  merge: string[] | null;
  /** Extra `#SBATCH` lines, e.g. "--qos=long". */
  extra?: string[];
}

/** Shell-quotes one word. */
export function shq(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The value of `--name v` / `--name=v` in an argument list. */
export function flagValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}

/** The command's output file: -o / --output (or the deprecated --out), else the command's default. */
function outputOf(args: string[], fallback: string): string {
  const short = args.indexOf('-o');
  return flagValue(args, 'output') ?? (short >= 0 ? args[short + 1] : undefined) ?? flagValue(args, 'out') ?? fallback;
}

const SHARDABLE = new Set(['sketch', 'lineage']);

/** The default merge step of a command run as an array, or null when it needs none / has none. */
export function defaultMerge(command: string[], array: number): string[] | null {
  if (command[0] === 'sketch') return ['merge', '--output', outputOf(command, 'sketches.mpsk'), '--shards', String(array)];
  if (command[0] === 'lineage') return ['merge', '--output', outputOf(command, 'lineage_results.csv'), '--shards', String(array)];
  return null;
}

export function validateOptions(o: SlurmScriptOptions): void {
  if (o.command.length === 0) throw new ModelprintError('E_USAGE', 'no modelprint command given', { hint: 'e.g. `modelprint slurm script --array 16 -- sketch --probes bank.json --models models.csv --output sketches.mpsk`' });
  if (!SHARDABLE.has(o.command[0])) {
    throw new ModelprintError('E_USAGE', `\`${o.command[0]}\` does not shard over an array (shardable: ${[...SHARDABLE].join(', ')})`, {
      subject: o.command[0],
      hint: 'run it as one job, or use `modelprint similarity --shard i/n` for the similarity step',
    });
  }
  if (flagValue(o.command, 'shard') !== undefined) {
    throw new ModelprintError('E_USAGE', 'leave --shard out of the command: each array task takes its shard from SLURM_ARRAY_TASK_ID', { subject: '--shard' });
  }
  if (!Number.isInteger(o.array) || o.array < 1) throw new ModelprintError('E_USAGE', `--array must be a positive integer, got ${o.array}`, { subject: '--array' });
  if (o.time !== undefined && !/^(\d+-)?\d+(:\d{1,2}){0,2}$/.test(o.time)) {
    throw new ModelprintError('E_USAGE', `--time ${o.time}: use a Slurm time (minutes, MM:SS, HH:MM:SS or D-HH:MM:SS)`, { subject: '--time' });
  }
}

function header(lines: Array<string | false | undefined>): string {
  return lines.filter((l): l is string => typeof l === 'string').map((l) => `#SBATCH ${l}`).join('\n');
}

/** The array job script. */
export function arrayScript(o: SlurmScriptOptions): string {
  const name = o.jobName ?? `modelprint-${o.command[0]}`;
  const cmd = [...o.command.map(shq), '--progress', 'jsonl'].join(' ');
  return `#!/bin/bash
# modelprint ${o.command[0]} as a Slurm array of ${o.array} tasks (written by \`modelprint slurm script\`).
# Each task runs shard SLURM_ARRAY_TASK_ID of ${o.array}; near the time limit it finishes the
# current model, saves, exits and requeues itself to resume.
${header([
  `--job-name=${name}`,
  `--array=0-${o.array - 1}${o.maxParallel ? `%${o.maxParallel}` : ''}`,
  o.time !== undefined && `--time=${o.time}`,
  o.cpus !== undefined && `--cpus-per-task=${o.cpus}`,
  o.gpus ? `--gpus=${o.gpus}` : undefined,
  o.mem !== undefined && `--mem=${o.mem}`,
  o.partition !== undefined && `--partition=${o.partition}`,
  o.account !== undefined && `--account=${o.account}`,
  `--output=${o.output}`,
  '--open-mode=append',
  '--requeue',
  `--signal=B:TERM@${o.signalSeconds}`,
  ...(o.extra ?? []),
])}
set -u
cd ${shq(o.workdir)}
NODE=\${MODELPRINT_NODE:-${shq(o.node)}}
MODELPRINT=\${MODELPRINT_BIN:-${shq(o.modelprint)}}
export MODELPRINT_HEARTBEAT=\${MODELPRINT_HEARTBEAT:-60}
task="\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}"
echo "modelprint: task $task (shard $((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))/\${SLURM_ARRAY_TASK_COUNT}, job \${SLURM_JOB_ID}, restart \${SLURM_RESTART_COUNT:-0}) on $(hostname) at $(date -u +%FT%TZ)"

near_limit=0
child=
on_term() {
  # SIGTERM to this shell alone while the job is RUNNING is --signal=B:TERM: the time limit
  # is close. From scancel or an operator's requeue the job is no longer RUNNING.
  # squeue asks slurmctld, which can be briefly busy: a few tries before giving up.
  state=
  for _ in 1 2 3 4 5; do
    state=$(squeue -h -j "\${SLURM_JOB_ID}" -o %T 2>/dev/null) && [ -n "$state" ] && break
    sleep 1
  done
  [ "$state" = RUNNING ] && near_limit=1
  echo "modelprint: SIGTERM (job \${state:-unknown}); finishing the current model"
  # scancel / requeue signal every process of the job already; a second SIGTERM would make
  # modelprint exit at once instead of finishing the model.
  [ "$near_limit" = 1 ] && [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
  return 0
}
trap on_term TERM

"$NODE" "$MODELPRINT" ${cmd} &
child=$!
wait "$child"; rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
wait "$child" 2>/dev/null; last=$?; [ "$last" -ne 127 ] && rc=$last

if [ "$near_limit" = 1 ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
  echo "modelprint: time limit close (exit $rc); requeueing $task to resume"
  scontrol requeue "$task"
  sleep 60 # the requeue ends this job
  exit "$rc"
fi
if [ "$rc" -eq 3 ]; then
  echo "modelprint: some models failed (kept in the output with their error codes)"
  rc=0
fi
echo "modelprint: task $task exit $rc at $(date -u +%FT%TZ)"
exit "$rc"
`;
}

/** The merge job script (submitted with --dependency=afterok:<array job>). */
export function mergeScript(o: SlurmScriptOptions): string {
  const name = `${o.jobName ?? `modelprint-${o.command[0]}`}-merge`;
  const out = o.output.replace(/_?%a/g, '').replace(/%A/g, '%j');
  return `#!/bin/bash
# Merges the ${o.array} shards of the array job once every task succeeded (written by \`modelprint slurm script\`).
${header([
  `--job-name=${name}`,
  '--time=01:00:00',
  '--cpus-per-task=1',
  o.partition !== undefined && `--partition=${o.partition}`,
  o.account !== undefined && `--account=${o.account}`,
  `--output=${out}`,
  '--open-mode=append',
])}
set -eu
cd ${shq(o.workdir)}
NODE=\${MODELPRINT_NODE:-${shq(o.node)}}
MODELPRINT=\${MODELPRINT_BIN:-${shq(o.modelprint)}}
"$NODE" "$MODELPRINT" ${(o.merge ?? []).map(shq).join(' ')}
`;
}

/** Submits the array, then the merge job depending on it. */
export function submitScript(o: SlurmScriptOptions, arrayFile: string, mergeFile: string | null): string {
  const logDir = path.dirname(o.output);
  return `#!/bin/bash
# Submits ${path.basename(arrayFile)}${mergeFile ? ` and, after every task succeeded, ${path.basename(mergeFile)}` : ''} (written by \`modelprint slurm script\`).
set -euo pipefail
cd ${shq(o.workdir)}
mkdir -p ${shq(logDir)}
array=$(sbatch --parsable ${shq(arrayFile)})
array=\${array%%;*}
echo "array job $array"
${
  mergeFile
    ? `merge=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes ${shq(mergeFile)})
merge=\${merge%%;*}
echo "merge job $merge"`
    : ''
}
`;
}
