/**
 * Sets `key` in `map`, first dropping its oldest entry when it already holds `max`: for the maps
 * that remember recent work (opened cookies and records, imported keys, servers' nonces), where a
 * full map costs a hit rate, never memory.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}
