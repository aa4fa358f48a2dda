import { OrderlyError } from '@orderly/shared';
import { Queryable } from '../db/db';
import { PublisherKeys } from '../keys/publisher-keys';
import type { Publisher, StoredPackage } from './packages';

/** Why an approver may not promote a package (the `reason` detail of ORDERLY_E_SELF_APPROVAL). */
export type SelfApprovalReason = 'uploaded' | 'owns_signing_key' | 'owns_uploading_service_account' | 'unrecorded';

async function serviceAccountOwner(db: Queryable, id: string): Promise<string | null> {
  const rows = await db.query<{ owner_user_id: string | null }>('SELECT owner_user_id FROM service_accounts WHERE id::text = $1', [id]);
  return rows[0]?.owner_user_id ?? null;
}

const refuse = (pkg: StoredPackage, approver: Publisher, reason: SelfApprovalReason, why: string): never => {
  throw new OrderlyError('ORDERLY_E_SELF_APPROVAL', `${approver.actor} cannot approve ${pkg.view.name}@${pkg.view.version}: ${why}`, {
    approver: approver.actor,
    reason,
  });
};

/**
 * Separation of duties by person, not by principal: the approver (or, when the approver is a
 * service account, the person who owns it) must not be the person behind any of
 *   - the upload: the uploading person, or the owner of the uploading service account;
 *   - the signing key: its holder, or the owner of the service account holding it.
 * Where a person cannot be named (an upload before uploaders were recorded, a service account
 * with no owner, a signing key bound to nobody from before keys had holders), separation cannot
 * be shown and the promotion is refused.
 */
export async function assertSeparated(db: Queryable, keys: PublisherKeys, pkg: StoredPackage, approver: Publisher): Promise<void> {
  const uploader = pkg.publishedBy;
  if (!uploader) refuse(pkg, approver, 'unrecorded', 'its uploader is not recorded; publish it again under a new version');
  const approverPeople = new Set([approver.id]);
  if (approver.kind === 'service') {
    const owner = await serviceAccountOwner(db, approver.id);
    if (!owner) refuse(pkg, approver, 'unrecorded', 'the approving service account has no owner');
    approverPeople.add(owner!);
  }
  if (approverPeople.has(uploader!.id)) refuse(pkg, approver, 'uploaded', 'they uploaded it');
  if (uploader!.kind === 'service') {
    const owner = await serviceAccountOwner(db, uploader!.id);
    if (!owner) refuse(pkg, approver, 'unrecorded', `the uploading service account ${uploader!.actor} has no owner, so separation cannot be shown`);
    if (approverPeople.has(owner!)) refuse(pkg, approver, 'owns_uploading_service_account', `they own the service account ${uploader!.actor} that uploaded it`);
  }
  const holder = await keys.holderOf(pkg.view.publisherKeyId, db);
  if (holder === null) refuse(pkg, approver, 'unrecorded', 'its signing key is bound to nobody, so separation cannot be shown');
  if (holder?.kind === 'user' && approverPeople.has(holder.id)) refuse(pkg, approver, 'owns_signing_key', 'they hold the key that signed it');
  if (holder?.kind === 'service') {
    const owner = await serviceAccountOwner(db, holder.id);
    if (approverPeople.has(holder.id)) refuse(pkg, approver, 'owns_signing_key', 'its signing key is held by the approving service account');
    if (!owner) refuse(pkg, approver, 'unrecorded', 'the service account holding its signing key has no owner, so separation cannot be shown');
    if (approverPeople.has(owner!)) refuse(pkg, approver, 'owns_signing_key', 'they own the service account holding the key that signed it');
  }
}
