import { describe, expect, it } from 'vitest';
import { createDirectGroups } from '../../src/runs/direct-group.js';
import type { DirectResult } from '../../src/runs/direct-transition.js';
import { emptyRequest } from '../../src/runs/policy.js';
import type { Actor } from '../../src/runs/transition-batch.js';

// How group commit (runs/direct-group.ts) splits what arrives together, and how each request
// still gets its own answer when a group cannot be applied. The statements themselves are
// direct-groups.test.ts's, on PostgreSQL; here they are stand-ins that record their calls.

const request = (id: string) => emptyRequest(id, 'PROCESSING');
const alice: Actor = { name: 'alice', projects: null };
const bob: Actor = { name: 'bob', projects: ['p'] };

/** A result naming the runs it stands for, one change each. */
const resultFor = (ids: string[]) =>
  ({
    outcomes: ids.map((id) => ({ kind: 'accepted', runId: id })),
    changes: ids.map((id) => ({ runId: id })),
  }) as unknown as DirectResult;

function recorder(options: { many?: 'apply' | 'refuse' | 'throw'; failOne?: string } = {}) {
  const many: { ids: string[]; actor: string | null }[] = [];
  const one: string[] = [];
  const groups = createDirectGroups({
    applyOne: async (r) => {
      one.push(r.id);
      if (r.id === options.failOne) throw new Error(`${r.id} failed`);
      return resultFor([r.id]);
    },
    applyMany: async (requests, actor) => {
      many.push({ ids: requests.map((r) => r.id), actor: actor.name });
      if (options.many === 'refuse') return null;
      if (options.many === 'throw') throw new Error('the group statement failed');
      return resultFor(requests.map((r) => r.id));
    },
  });
  return { groups, many, one };
}

const runIdOf = (result: DirectResult | null) =>
  (result?.outcomes[0] as unknown as { runId: string }).runId;

describe('group commit', () => {
  it('groups by actor, one request per run, at most 32 to a group, each answered its own', async () => {
    const { groups, many, one } = recorder();
    const ids = Array.from({ length: 70 }, (_, i) => `run-${i}`);
    const answers = await Promise.all([
      ...ids.map((id) => groups.apply(request(id), alice, false)),
      groups.apply(request('run-0'), alice, false),
      groups.apply(request('run-1'), bob, false),
    ]);
    expect(answers.map(runIdOf)).toEqual([...ids, 'run-0', 'run-1']);
    expect(many.map((g) => g.ids.length)).toEqual([32, 32, 7]);
    // The second request for run-0 went with the third of alice's groups; bob's went alone.
    expect(many[2]).toEqual({ ids: [...ids.slice(64), 'run-0'], actor: 'alice' });
    expect(one).toEqual(['run-1']);
  });

  it('a request alone goes alone; requests a turn apart are not grouped', async () => {
    const { groups, many, one } = recorder();
    await groups.apply(request('a'), alice, false);
    await groups.apply(request('b'), alice, false);
    expect(many).toEqual([]);
    expect(one).toEqual(['a', 'b']);
  });

  it.each(['refuse', 'throw'] as const)(
    'when the group statement %ss, each request goes on its own, and only its own failure fails it',
    async (many) => {
      const { groups, one } = recorder({ many, failOne: 'b' });
      const answers = await Promise.allSettled(
        ['a', 'b', 'c'].map((id) => groups.apply(request(id), alice, false)),
      );
      expect(one).toEqual(['a', 'b', 'c']);
      expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((answers[1] as PromiseRejectedResult).reason).toEqual(new Error('b failed'));
    },
  );
});
