import { useRef, useState } from 'preact/hooks';

/**
 * The newest snapshot seen of each run, by revision: a snapshot read or received late never
 * replaces a newer one. `keep` answers whether it took the snapshot; `redraw` shows it.
 */
export function useNewestById<T extends { id: string; revision: number }>() {
  const latest = useRef(new Map<string, T>()).current;
  const [, setTick] = useState(0);
  const keep = (snapshot: T): boolean => {
    const seen = latest.get(snapshot.id);
    if (seen && seen.revision >= snapshot.revision) return false;
    latest.set(snapshot.id, snapshot);
    return true;
  };
  const redraw = () => setTick((n) => n + 1);
  return { latest, keep, redraw };
}
