import { Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { DEFAULT_REGISTRY, isPostgresUrl } from '../../registry/index.js';
import { LATEST_SCHEMA_VERSION } from '../../registry/migrations.js';
import type { RoleSetup } from '../../registry/postgres.js';

interface MigrateResult {
  backend: 'sqlite' | 'postgres';
  location: string;
  schemaVersion: number;
  latestVersion: number;
  applied: number[];
  roles?: RoleSetup;
}

export default class RegistryMigrate extends BaseCommand<typeof RegistryMigrate> {
  static override summary = 'Apply pending schema migrations and print the schema version.';
  static override description = `Opening a registry migrates it anyway; this command does it on purpose (e.g. once before an HPC array starts) and reports what it applied. Several processes migrating at once apply each migration exactly once.

On PostgreSQL, migrations need the modelprint_admin role. --setup-roles (run once per database as a PostgreSQL superuser) creates the group roles modelprint_admin (owns and writes every table, migrates) and modelprint_reader (reads every table; may record runs and model errors, never models, probe sets or fingerprints), hands the registry tables to modelprint_admin and grants the reader its privileges. Then give people a role with \`modelprint registry grant <login> --role admin|reader\`.`;
  static override examples = [
    '<%= config.bin %> registry migrate',
    '<%= config.bin %> registry migrate --registry postgres://postgres@db.example.org/modelprint --setup-roles',
  ];
  static override flags = {
    ...registryFlag,
    'setup-roles': Flags.boolean({
      description: 'PostgreSQL only: create the modelprint_admin / modelprint_reader roles and grant their privileges (needs a superuser).',
    }),
  };

  async run(): Promise<MigrateResult> {
    const spec = this.registrySpec() ?? DEFAULT_REGISTRY;
    let roles: RoleSetup | undefined;
    if (this.flags['setup-roles']) {
      if (!isPostgresUrl(spec)) {
        throw new ModelprintError('E_USAGE', '--setup-roles needs a PostgreSQL registry (--registry postgres://…)', {
          subject: '--setup-roles',
          hint: 'a SQLite registry is a local file; its permissions are the file permissions',
        });
      }
      const { setupRoles } = await import('../../registry/postgres.js');
      roles = await setupRoles(spec);
      this.logger.info(
        `roles ${roles.roles.join(', ')} ready in schema ${roles.schema}${roles.created.length ? ` (created ${roles.created.join(', ')})` : ''}`,
      );
    }
    const reg = await this.registry();
    const info = await reg.info();
    const applied = [...reg.appliedMigrations];
    this.logger.info(applied.length ? `applied migration(s) ${applied.join(', ')}` : 'no pending migrations');
    this.out(`schema version ${info.schemaVersion} (${info.backend} ${info.location})`);
    return {
      backend: info.backend,
      location: info.location,
      schemaVersion: info.schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      applied,
      ...(roles ? { roles } : {}),
    };
  }
}
