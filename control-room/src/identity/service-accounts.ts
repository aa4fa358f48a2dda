import { randomUUID } from 'node:crypto';
import { OrderlyError } from '@orderly/shared';
import { IdentityDeps, iso, ms } from './deps';

interface ServiceAccountRow {
  id: string;
  name: string;
  roles: string[];
  created_at: Date;
  disabled_at: Date | null;
}

export interface ServiceAccountView {
  id: string;
  name: string;
  roles: string[];
  createdAt: string;
  disabled: boolean;
}

/**
 * Service accounts for automation (CI publishing): roles but no password and no second factor, so
 * they authenticate with API tokens only and can never pass a step-up. Which roles they may hold
 * is `ServiceRole` in schemas.ts (never security, admin or approver).
 */
export class ServiceAccounts {
  constructor(private readonly deps: IdentityDeps) {}

  async create(name: string, roles: readonly string[], createdBy: string): Promise<ServiceAccountView> {
    try {
      const [row] = await this.deps.db.query<ServiceAccountRow>(
        'INSERT INTO service_accounts (id, name, roles, created_by) VALUES ($1, $2, $3, $4) RETURNING *',
        [randomUUID(), name, [...new Set(roles)], createdBy],
      );
      return this.view(row!);
    } catch (err) {
      if ((err as { code?: unknown }).code === '23505')
        throw new OrderlyError('ORDERLY_E_IDENTITY_CONFLICT', `service account ${name} already exists`, { name });
      throw err;
    }
  }

  async list(): Promise<ServiceAccountView[]> {
    return (await this.deps.db.query<ServiceAccountRow>('SELECT * FROM service_accounts ORDER BY name')).map((r) => this.view(r));
  }

  async find(idOrName: string): Promise<ServiceAccountView> {
    const [row] = await this.deps.db.query<ServiceAccountRow>('SELECT * FROM service_accounts WHERE (id::text = $1 OR name = $1) AND disabled_at IS NULL', [
      idOrName,
    ]);
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such service account');
    return this.view(row);
  }

  /** Disables a service account: its tokens stop working at once (each request checks the owner). */
  async disable(idOrName: string): Promise<ServiceAccountView> {
    const account = await this.find(idOrName);
    const [row] = await this.deps.db.query<ServiceAccountRow>('UPDATE service_accounts SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1 RETURNING *', [
      account.id,
      iso(this.deps.clock()),
    ]);
    return this.view(row!);
  }

  private view(row: ServiceAccountRow): ServiceAccountView {
    return { id: row.id, name: row.name, roles: row.roles, createdAt: iso(ms(row.created_at)!), disabled: row.disabled_at !== null };
  }
}
