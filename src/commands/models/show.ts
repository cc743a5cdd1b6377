import { Args } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { renderTable } from '../../ui/table.js';
import type { ModelRecord } from '../../registry/types.js';

export default class ModelsShow extends BaseCommand<typeof ModelsShow> {
  static override summary = 'Show one registered model.';
  static override examples = ['<%= config.bin %> models show 3', '<%= config.bin %> models show alpha-base --json'];
  static override args = {
    model: Args.string({ description: 'Registry id or name.', required: true }),
  };

  static override flags = { ...registryFlag };

  /** Only reads: a registry that does not exist is empty, and none is created. */
  static override registryAccess = 'read' as const;

  async run(): Promise<ModelRecord> {
    const m = await (await this.registry()).getModel(this.args.model);
    if (!m) {
      throw new ModelprintError('E_NOT_FOUND', `no model "${this.args.model}" in the registry`, {
        subject: this.args.model,
        hint: 'see `modelprint models list` for ids and names',
      });
    }
    this.out(renderTable(['field', 'value'], Object.entries(m).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])));
    return m;
  }
}
