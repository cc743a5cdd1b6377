import { Args, Flags } from '@oclif/core';
import fs from 'node:fs';
import path from 'node:path';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ggufQuantFlag, onnxVariantFlag } from '../../cli/method-flags.js';
import { parseGgufQuantList, pickGgufFile } from '../../formats/gguf.js';
import { ModelprintError } from '../../errors.js';
import { detectFormat, type OnnxVariantRequest } from '../../inference/format.js';
import { parseHubId } from '../../inference/hub.js';
import { ModelError } from '../../inference/errors.js';
import { locateModel, resolveModel } from '../../inference/resolve.js';
import { contentHash } from '../../util/hash.js';
import type { ModelRecord } from '../../registry/types.js';

export default class ModelsAdd extends BaseCommand<typeof ModelsAdd> {
  static override summary = 'Register a model (a local directory or file, or a Hub id in the local cache) in the registry.';
  static override description =
    'Records where the model is, its content hash and format, and the lineage labels you know (family, type, base). A Hub id (org/name[@revision]) or a Hugging Face cache folder records the repo id as the name and the snapshot commit as the revision (modelprint reads the cache only; it never downloads). --onnx-variant records which ONNX file of a transformers.js onnx/ folder to use (tag onnx-variant:<name>).';
  static override examples = [
    '<%= config.bin %> models add ./zoo/alpha-base --family alpha --model-type Base',
    '<%= config.bin %> models add ./models/qwen-instruct --name Qwen/Qwen2.5-0.5B-Instruct --base-model Qwen/Qwen2.5-0.5B --model-type Chat --json',
    '<%= config.bin %> models add Xenova/tiny-model@main --onnx-variant quantized',
  ];
  static override args = {
    path: Args.string({ description: 'Model directory (Hugging Face / Optimum ONNX layout), model file, or Hub id in the local cache.', required: true }),
  };
  static override flags = {
    ...registryFlag,
    name: Flags.string({ description: 'Unique name (e.g. the hub id). [default: the hub repo id, else the directory name]' }),
    family: Flags.string({ description: 'Family the model belongs to.' }),
    'model-type': Flags.string({ description: 'Type label: Base, Chat, Instruct, Quantized, Finetune, …' }),
    'display-name': Flags.string({ description: 'Name to show in tables and reports.' }),
    'base-model': Flags.string({ description: 'Declared base model (name or hub id).' }),
    revision: Flags.string({ description: 'Hub revision (commit) the files come from. [default: the cache snapshot commit]' }),
    downloads: Flags.integer({ description: 'Hub download count.', min: 0 }),
    likes: Flags.integer({ description: 'Hub like count.', min: 0 }),
    tag: Flags.string({ description: 'A tag (repeatable).', multiple: true }),
    'no-hash': Flags.boolean({ description: 'Skip hashing the model files (faster for huge models).' }),
    'onnx-variant': onnxVariantFlag,
    'gguf-quant': ggufQuantFlag,
  };

  async run(): Promise<ModelRecord> {
    const ref = this.args.path;
    if (!fs.existsSync(ref) && !parseHubId(ref)) {
      throw new ModelprintError('E_NOT_FOUND', `model path ${ref} does not exist`, {
        subject: ref,
        hint: 'pass a model directory or file, or a Hub id in the local cache; `modelprint zoo create ./zoo` makes test models',
      });
    }
    // Hub ids and cache folders resolve to their snapshot (refs checked, paths confined).
    const loc = locateModel(ref);
    let target = loc.abs;
    // A folder of GGUF quantizations: --gguf-quant picks the file, and the model is that file.
    if (this.flags['gguf-quant'] && fs.statSync(target).isDirectory() && detectFormat(target) === 'gguf') {
      target = pickGgufFile(target, parseGgufQuantList(this.flags['gguf-quant']), loc.id);
    }
    // A single file must be a model file (.onnx, .gguf, .safetensors); a folder may hold anything (its format is recorded).
    if (fs.statSync(target).isFile() && detectFormat(target) === 'unknown') {
      throw new ModelError('unsupported_format', ref, `${target} is not a model file (expected .onnx, .gguf or .safetensors, or a model folder)`, 'pass the model folder, or its .onnx file');
    }
    const variant = this.flags['onnx-variant'] as OnnxVariantRequest;
    if (variant !== 'auto') resolveModel(target, { onnxVariant: variant });
    const name = this.flags.name ?? loc.hub?.repoId ?? path.basename(path.resolve(ref));
    const tags = [...(this.flags.tag ?? [])];
    if (variant !== 'auto') tags.push(`onnx-variant:${variant}`);
    const reg = await this.registry();
    const rec = await reg.addModel({
      name,
      source: target,
      revision: this.flags.revision ?? loc.hub?.revision ?? null,
      contentHash: this.flags['no-hash'] ? null : await contentHash(target),
      family: this.flags.family ?? null,
      modelType: this.flags['model-type'] ?? null,
      displayName: this.flags['display-name'] ?? null,
      baseModel: this.flags['base-model'] ?? null,
      downloads: this.flags.downloads ?? null,
      likes: this.flags.likes ?? null,
      tags,
      format: detectFormat(target),
    });
    this.logger.info(`registered model ${rec.id} "${rec.name}" (${rec.format}${loc.hub ? `, ${loc.hub.repoId}@${loc.hub.revision}` : ''})`);
    return rec;
  }
}
