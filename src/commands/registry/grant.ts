import { Args, Flags } from '@oclif/core';
import { BaseCommand, registryFlag } from '../../cli/base.js';
import { ModelprintError } from '../../errors.js';
import { isPostgresUrl } from '../../registry/index.js';

export default class RegistryGrant extends BaseCommand<typeof RegistryGrant> {
  static override summary = 'Give a PostgreSQL login the admin or reader role of a shared registry (or take it away).';
  static override description =
    'Grants membership of modelprint_admin (read and write everything, migrate) or modelprint_reader (read; record own runs and errors). PostgreSQL enforces them. Run as a superuser or a CREATEROLE user after `registry migrate --setup-roles`; the login must exist (CREATE ROLE alice LOGIN PASSWORD …).';
  static override examples = [
    '<%= config.bin %> registry grant alice --role admin --registry postgres://postgres@db/modelprint',
    '<%= config.bin %> registry grant bob --role reader --revoke --registry postgres://postgres@db/modelprint',
  ];
  static override args = {
    user: Args.string({ description: 'PostgreSQL login role.', required: true }),
  };
  static override flags = {
    ...registryFlag,
    role: Flags.string({ description: 'Which group role.', options: ['admin', 'reader'], required: true }),
    revoke: Flags.boolean({ description: 'Take the role away instead.' }),
  };

  async run(): Promise<{ user: string; role: string; granted: boolean }> {
    const spec = this.flags.registry;
    if (!spec || !isPostgresUrl(spec)) {
      throw new ModelprintError('E_USAGE', 'registry grant needs a PostgreSQL registry (--registry postgres://…)', {
        subject: '--registry',
        hint: 'roles exist only in a shared PostgreSQL registry',
      });
    }
    const { grantRole } = await import('../../registry/postgres.js');
    const r = await grantRole(spec, this.args.user, this.flags.role as 'admin' | 'reader', this.flags.revoke);
    this.out(`${r.granted ? 'granted' : 'revoked'} ${r.role} ${r.granted ? 'to' : 'from'} ${r.user}`);
    return r;
  }
}
