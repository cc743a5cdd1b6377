import { Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { renderTable } from '../../ui/table.js';
import type { ModelRecord } from '../../registry/types.js';

export default class ModelsList extends BaseCommand<typeof ModelsList> {
  static override summary = 'List the registered models.';
  static override examples = ['<%= config.bin %> models list', '<%= config.bin %> models list --family alpha --json'];
  static override flags = {
    ...registryFlag,
    family: Flags.string({ description: 'Only models of this family.' }),
  };

  /** Only reads: a registry that does not exist is empty, and none is created. */
  static override registryAccess = 'read' as const;

  async run(): Promise<{ models: ModelRecord[] }> {
    const models = await (await this.registry()).listModels({ family: this.flags.family });
    if (models.length === 0) this.logger.info('no models registered (add one with `modelprint models add <path>`)');
    else
      this.out(
        renderTable(
          ['id', 'name', 'family', 'type', 'base', 'format', 'downloads'],
          models.map((m) => [m.id, m.name, m.family, m.modelType, m.baseModel, m.format, m.downloads]),
        ),
      );
    return { models };
  }
}
