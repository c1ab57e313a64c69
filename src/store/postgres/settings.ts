/**
 * Settings: small cluster-wide values (the admin key's hash, the bridge toggle). Free
 * functions taking db first. setSettingIfAbsent has one winner when nodes race: the first
 * INSERT stores its value, every node then reads the value stored.
 */
import type { Db } from './db.ts';

export async function getSetting(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

export async function setSetting(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('settings')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

export async function setSettingIfAbsent(db: Db, key: string, value: string): Promise<string> {
  await db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
  // Its own statement, so its own snapshot: it sees the row whichever node's INSERT won.
  const stored = await getSetting(db, key);
  if (stored === undefined) throw new Error(`setting ${key} vanished right after it was stored`);
  return stored;
}
