import { Args, Flags } from '@oclif/core';
import fs from 'node:fs';
import path from 'node:path';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { detectFormat } from '../../inference/format.js';
import { contentHash } from '../../util/hash.js';
import type { ModelRecord } from '../../registry/types.js';

export default class ModelsAdd extends BaseCommand<typeof ModelsAdd> {
  static override summary = 'Register a model (a local directory or file) in the registry.';
  static override description =
    'Records where the model is, its content hash and format, and the lineage labels you know (family, type, base).';
  static override examples = [
    '<%= config.bin %> models add ./zoo/alpha-base --family alpha --model-type Base',
    '<%= config.bin %> models add ./models/qwen-instruct --name Qwen/Qwen2.5-0.5B-Instruct --base-model Qwen/Qwen2.5-0.5B --model-type Chat --json',
  ];
  static override args = {
    path: Args.string({ description: 'Model directory (Hugging Face / Optimum ONNX layout) or model file.', required: true }),
  };
  static override flags = {
    ...registryFlag,
    name: Flags.string({ description: 'Unique name (e.g. the hub id). [default: the directory name]' }),
    family: Flags.string({ description: 'Family the model belongs to.' }),
    'model-type': Flags.string({ description: 'Type label: Base, Chat, Instruct, Quantized, Finetune, …' }),
    'display-name': Flags.string({ description: 'Name to show in tables and reports.' }),
    'base-model': Flags.string({ description: 'Declared base model (name or hub id).' }),
    revision: Flags.string({ description: 'Hub revision (commit) the files come from.' }),
    downloads: Flags.integer({ description: 'Hub download count.', min: 0 }),
    likes: Flags.integer({ description: 'Hub like count.', min: 0 }),
    tag: Flags.string({ description: 'A tag (repeatable).', multiple: true }),
    'no-hash': Flags.boolean({ description: 'Skip hashing the model files (faster for huge models).' }),
  };

  async run(): Promise<ModelRecord> {
    const target = path.resolve(this.args.path);
    if (!fs.existsSync(target)) {
      throw new ModelprintError('E_NOT_FOUND', `model path ${this.args.path} does not exist`, {
        subject: this.args.path,
        hint: 'pass a model directory or file; `modelprint zoo create ./zoo` makes test models',
      });
    }
    const name = this.flags.name ?? path.basename(target);
    const reg = await this.registry();
    const rec = await reg.addModel({
      name,
      source: target,
      revision: this.flags.revision ?? null,
      contentHash: this.flags['no-hash'] ? null : await contentHash(target),
      family: this.flags.family ?? null,
      modelType: this.flags['model-type'] ?? null,
      displayName: this.flags['display-name'] ?? null,
      baseModel: this.flags['base-model'] ?? null,
      downloads: this.flags.downloads ?? null,
      likes: this.flags.likes ?? null,
      tags: this.flags.tag ?? [],
      format: detectFormat(target),
    });
    this.logger.info(`registered model ${rec.id} "${rec.name}" (${rec.format})`);
    return rec;
  }
}
