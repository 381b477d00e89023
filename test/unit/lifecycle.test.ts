import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  getStatusesAllowedInto,
  getStatusInfo,
  isTransitionAllowed,
  listStatuses,
  RUN_STATUSES,
  type RunStatus,
} from '../../src/lifecycle/lifecycle.js';

interface DesignStatus {
  status: RunStatus;
  category: string;
  color: string;
  isFinal: boolean;
  allowedNext: RunStatus[];
}

// A verbatim copy of the design's lifecycle.json (../shared/design/), the table the module must equal.
const design = JSON.parse(
  readFileSync(new URL('../fixtures/lifecycle.json', import.meta.url), 'utf8'),
) as { statuses: DesignStatus[] };

describe('lifecycle', () => {
  it('has exactly the 21 statuses of the design, in its order', () => {
    expect(RUN_STATUSES).toEqual(design.statuses.map((s) => s.status));
    expect(listStatuses().map((s) => s.status)).toEqual(design.statuses.map((s) => s.status));
  });

  it('matches category, color, finality and allowedNext (in order) for every status', () => {
    for (const expected of design.statuses) {
      expect(getStatusInfo(expected.status)).toEqual(expected);
    }
  });

  it('allows exactly the legal pairs of all 21 × 21', () => {
    let legal = 0;
    for (const from of design.statuses) {
      for (const to of RUN_STATUSES) {
        const expected = from.allowedNext.includes(to);
        expect(isTransitionAllowed(from.status, to), `${from.status} -> ${to}`).toBe(expected);
        expect(getStatusesAllowedInto(to).includes(from.status), `${to} <- ${from.status}`).toBe(
          expected,
        );
        if (expected) legal++;
      }
    }
    // 171 in the design's table, + SCHEDULED -> SUCCEEDED (Parsl's launched -> exec_done).
    expect(legal).toBe(172);
  });

  it('never allows re-entering CREATED nor a move to the same status', () => {
    for (const s of RUN_STATUSES) {
      expect(isTransitionAllowed(s, 'CREATED')).toBe(false);
      expect(isTransitionAllowed(s, s)).toBe(false);
    }
  });
});
