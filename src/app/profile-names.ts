/**
 * What a profile's name (`?profile=NAME`) names in the browser: its IndexedDB database. Kept apart from
 * boot-peer.ts, a chunk loaded lazily, so that the page's first chunk can start opening the database.
 */

/** The database name of a profile. */
export function profileDatabase(profile: string): string {
  return `hometab:${profile}`;
}
