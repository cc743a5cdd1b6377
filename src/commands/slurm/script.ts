import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { arrayScript, defaultMerge, mergeScript, submitScript, validateOptions, type SlurmScriptOptions } from '../../hpc/slurm.js';
import { writeFileAtomic } from '../../util/atomic.js';

export default class SlurmScript extends BaseCommand<typeof SlurmScript> {
  static override summary = 'Write an sbatch array script for a modelprint command, a merge job after it (afterok) and a submit script.';
  static override description = `Everything after \`--\` is the modelprint command each array task runs (today: sketch); task i runs shard i of --array (from SLURM_ARRAY_TASK_ID). The array script asks for --signal=B:TERM@<signal-seconds>: near its time limit a task finishes the current model, saves it, exits and requeues itself (scontrol requeue), and the requeued task resumes. The merge job (sketch: \`modelprint merge --output <out> --shards N\`) runs once every task succeeded. Writes <script>, <script stem>.merge.sbatch and <script stem>.submit.sh; run the last to submit both.`;
  static override examples = [
    '<%= config.bin %> slurm script --array 16 --time 02:00:00 --cpus 4 -- sketch --probes bank.json --models models.csv --output sketches.mpsk',
    '<%= config.bin %> slurm script --array 64 --gpus 1 --partition gpu -o jobs/sketch.sbatch -- sketch --probes bank.json --models models.csv --output out/sketches.mpsk && jobs/sketch.submit.sh',
  ];
  static override strict = false;
  static override args = {
    command: Args.string({ description: 'The modelprint command and its arguments (after --).', required: true }),
  };
  static override flags = {
    array: Flags.integer({ description: 'Number of array tasks (shards).', required: true, min: 1 }),
    time: Flags.string({ description: 'Time limit per task (Slurm format, e.g. 02:00:00).' }),
    cpus: Flags.integer({ description: 'CPUs per task.', min: 1 }),
    gpus: Flags.integer({ description: 'GPUs per task.', min: 0 }),
    mem: Flags.string({ description: 'Memory per task (e.g. 16G).' }),
    partition: Flags.string({ description: 'Slurm partition.' }),
    account: Flags.string({ description: 'Slurm account.' }),
    'job-name': Flags.string({ description: 'Job name. [default: modelprint-<command>]' }),
    log: Flags.string({ description: 'Log file pattern of the tasks (sbatch --output).', default: 'slurm-logs/%x-%A_%a.out' }),
    'signal-seconds': Flags.integer({ description: 'Seconds before the time limit at which a task stops and requeues (--signal=B:TERM@s).', default: 300, min: 1 }),
    'max-parallel': Flags.integer({ description: 'At most this many tasks at once (--array=0-N%M).', min: 1 }),
    output: Flags.string({ char: 'o', description: 'Array script to write (the merge and submit scripts go next to it). [default: modelprint-<command>.sbatch]' }),
    'no-merge': Flags.boolean({ description: 'Write no merge job.' }),
  };

  async run(): Promise<Record<string, unknown>> {
    const f = this.flags;
    const raw = this.argv;
    const dd = raw.indexOf('--');
    // oclif rejects flags it does not know, so the command's own flags come after "--".
    const command = dd >= 0 ? raw.slice(dd + 1) : this.positional;
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    const opts: SlurmScriptOptions = {
      command,
      array: f.array,
      maxParallel: f['max-parallel'],
      time: f.time,
      cpus: f.cpus,
      gpus: f.gpus,
      mem: f.mem,
      partition: f.partition,
      account: f.account,
      jobName: f['job-name'],
      output: path.resolve(f.log),
      signalSeconds: f['signal-seconds'],
      workdir: process.cwd(),
      node: process.execPath,
      modelprint: path.join(root, 'bin', 'run.js'),
      merge: null,
    };
    validateOptions(opts);
    opts.merge = f['no-merge'] ? null : defaultMerge(command, f.array);
    const scriptFile = path.resolve(f.output ?? `modelprint-${command[0]}.sbatch`);
    const stem = scriptFile.replace(/\.sbatch$|\.sh$/, '');
    const mergeFile = opts.merge ? `${stem}.merge.sbatch` : null;
    const submitFile = `${stem}.submit.sh`;
    if (!fs.existsSync(opts.modelprint)) {
      throw new ModelprintError('E_INTERNAL', `modelprint entry point not found at ${opts.modelprint}`, { hint: 'run from an installed modelprint checkout, or set MODELPRINT_BIN in the job environment' });
    }
    writeFileAtomic(scriptFile, arrayScript(opts));
    if (mergeFile) writeFileAtomic(mergeFile, mergeScript(opts));
    writeFileAtomic(submitFile, submitScript(opts, scriptFile, mergeFile));
    for (const file of [scriptFile, mergeFile, submitFile]) if (file) fs.chmodSync(file, 0o755);
    this.out(`wrote ${path.relative(process.cwd(), scriptFile)}${mergeFile ? `, ${path.relative(process.cwd(), mergeFile)}` : ''} and ${path.relative(process.cwd(), submitFile)}; submit with: ${path.relative(process.cwd(), submitFile) || submitFile}`);
    return { script: scriptFile, merge_script: mergeFile, submit: submitFile, array: f.array, command, merge: opts.merge };
  }
}
