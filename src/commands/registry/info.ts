import { BaseCommand, registryFlag } from '../../cli/base.js';
import { renderTable } from '../../ui/table.js';
import type { RegistryInfo } from '../../registry/types.js';

export default class RegistryInfoCmd extends BaseCommand<typeof RegistryInfoCmd> {
  static override summary = 'Show where the registry is, its schema version and what it holds.';
  static override examples = ['<%= config.bin %> registry info', '<%= config.bin %> registry info --registry /scratch/reg.db --json'];

  static override flags = { ...registryFlag };

  /** Only reads: a registry that does not exist is empty, and none is created. */
  static override registryAccess = 'read' as const;

  async run(): Promise<RegistryInfo> {
    const info = await (await this.registry()).info();
    this.out(
      renderTable(
        ['backend', 'location', 'schema', 'models', 'probe sets', 'fingerprints', 'runs', 'errors'],
        [[info.backend, info.location, info.schemaVersion, info.counts.models, info.counts.probeSets, info.counts.fingerprints, info.counts.runs, info.counts.errors]],
      ),
    );
    return info;
  }
}
