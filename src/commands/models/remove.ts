import { Args } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';

export default class ModelsRemove extends BaseCommand<typeof ModelsRemove> {
  static override summary = 'Remove a model from the registry (its files are left alone).';
  static override examples = ['<%= config.bin %> models remove 3'];
  static override args = {
    model: Args.string({ description: 'Registry id or name.', required: true }),
  };

  static override flags = { ...registryFlag };

  async run(): Promise<{ removed: string }> {
    const removed = await (await this.registry()).removeModel(this.args.model);
    if (!removed) {
      throw new ModelprintError('E_NOT_FOUND', `no model "${this.args.model}" in the registry`, {
        subject: this.args.model,
        hint: 'see `modelprint models list` for ids and names',
      });
    }
    this.logger.info(`removed ${this.args.model}`);
    return { removed: this.args.model };
  }
}
