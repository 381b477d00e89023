import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, SHOTS } from '../support/browser.js';
import { startFlakyProxy } from '../support/flaky-proxy.js';
import { createRun, transitionRun } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

/** The lifecycle's colors as the browser reports them. */
const CREATED_COLOR = 'rgb(72, 85, 99)'; // #485563
const RUNNING_COLOR = 'rgb(46, 119, 170)'; // #2e77aa
const STOPPING_COLOR = 'rgb(170, 158, 74)'; // #aa9e4a
const SUCCEEDED_COLOR = 'rgb(26, 170, 85)'; // #1aaa55
const UPSTREAM_FAILED_COLOR = 'rgb(170, 49, 15)'; // #aa310f

describe('the dashboard in a real browser', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  let origin: string;
  let browser: Browser;
  const problems: string[] = [];
  /** While the test cuts the page off: its requests may fail at the network, as they should. */
  let cutOff = false;

  beforeAll(async () => {
    server = await startServer();
    // The browser reaches the service through a proxy the test can cut.
    proxy = await startFlakyProxy(server.url);
    origin = new URL(proxy.url).origin;
    browser = await launchBrowser();
    // A browser's first page pays for its start-up: here, not in the first test's time (on a
    // fresh CI machine, where Chromium had just been installed, the first test once ran out of
    // its 60 s; it did not happen again).
    const first = await browser.newPage();
    await first.goto(`${origin}/`);
    await first.getByLabel('API token').waitFor({ timeout: 90_000 });
    await first.context().close();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  async function openPage(
    viewport: { width: number; height: number },
    hash: string,
    /** Set up the context before the page loads (routes, say). */
    prepare: (context: BrowserContext) => Promise<void> = async () => {},
  ): Promise<Page> {
    problems.length = 0; // each test answers for its own page
    const context = await browser.newContext({ viewport });
    await prepare(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Expected: the check for a token before signing in (401), the socket while cut off, and
      // a request that was in flight or sent while the test cut the connections.
      const expected =
        /status of 401|WebSocket/.test(message.text()) ||
        (cutOff && /net::ERR_/.test(message.text()));
      if (message.type() === 'error' && !expected) problems.push(`console: ${message.text()}`);
    });
    await page.goto(`${origin}/${hash}`);
    return page;
  }

  async function signIn(page: Page, token = TEST_ADMIN_TOKEN): Promise<void> {
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    await expect.poll(() => page.locator('.connection').getAttribute('data-state')).toBe('live');
  }

  const badge = (page: Page, runId: string) => page.locator(`tr[data-run-id="${runId}"] .status`);
  const backgroundOf = (locator: ReturnType<Page['locator']>) =>
    locator.evaluate((el) => getComputedStyle(el).backgroundColor);

  /** A token with this role, for the dashboard to sign in with. */
  async function tokenFor(role: 'READ' | 'WRITE'): Promise<string> {
    const created = await server.gql<{ createApiToken: { token: string } }>(
      `mutation($name: String!, $role: ApiRole!) {
        createApiToken(input: { name: $name, role: $role }) { token } }`,
      { name: uniqueProject(role.toLowerCase()), role },
    );
    return created.data!.createApiToken.token;
  }

  it('asks for a token; a run created and moved through the API appears and changes color live; its page charts its measurements', async () => {
    const project = uniqueProject('e2e');
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);

    // Auth is on: a wrong token is refused, the right one opens the dashboard.
    await page.getByLabel('API token').fill('rst_not-a-real-token');
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not accepted');
    await signIn(page);

    // An empty project says what to do.
    await expect.poll(() => page.getByTestId('empty').textContent()).toContain('createRun');

    const run = await createRun(server, { project, name: 'resnet' });
    await expect.poll(() => badge(page, run.id).textContent()).toBe('CREATED');
    expect(await badge(page, run.id).evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(
      CREATED_COLOR,
    );

    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    await expect.poll(() => badge(page, run.id).textContent()).toBe('RUNNING');
    expect(await badge(page, run.id).evaluate((el) => getComputedStyle(el).backgroundColor)).toBe(
      RUNNING_COLOR,
    );
    await server.gql(
      `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5, phase: "epoch 5" }) { id } }`,
      { id: run.id },
    );
    const bar = page.locator(`tr[data-run-id="${run.id}"] [role=progressbar]`);
    await expect.poll(() => bar.getAttribute('aria-valuenow')).toBe('50');
    await page.screenshot({ path: `${SHOTS}dashboard-runs.png` });

    // Keyboard only: from the project filter to the run's link, then into the run.
    await page.getByLabel('Project').focus();
    await page.keyboard.press('Tab'); // status filter
    await page.keyboard.press('Tab'); // the run's link
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('resnet');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('h1#run-title').textContent()).toContain('resnet');
    const timeline = page.locator('.timeline li');
    await expect
      .poll(() => timeline.evaluateAll((li) => li.map((l) => l.dataset['status'])))
      .toEqual(['CREATED', 'RUNNING']);

    await server.gql(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
        { name: "loss", value: 0.9, step: 1 }, { name: "loss", value: 0.6, step: 2 },
        { name: "loss", value: 0.4, step: 3 }] }) }`,
      { id: run.id },
    );
    const chart = page.locator('figure[data-series="loss"] svg');
    await expect.poll(() => chart.getAttribute('aria-label')).toContain('3 points');
    await server.gql(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [{ name: "loss", value: 0.3, step: 4 }] }) }`,
      { id: run.id },
    );
    await expect
      .poll(() => chart.getAttribute('aria-label'))
      .toBe('loss: 4 points from 0.3 to 0.9, last 0.3');

    // A series that is not numbers shows its newest value with its step, not a chart.
    await server.gql(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
        { name: "mode", data: "warmup", step: 3 }, { name: "mode", data: "fast", step: 4 },
        { name: "stats", data: { mean: 0.5, tags: ["a"] }, step: 4 }] }) }`,
      { id: run.id },
    );
    const mode = page.locator('figure[data-series="mode"]');
    await expect.poll(() => mode.locator('pre').textContent()).toBe('fast');
    expect(await mode.locator('figcaption').textContent()).toContain('step 4');
    expect(await mode.locator('svg').count()).toBe(0);
    await expect
      .poll(() => page.locator('figure[data-series="stats"] pre').textContent())
      .toBe(JSON.stringify({ mean: 0.5, tags: ['a'] }, null, 2));

    await transitionRun(server, { id: run.id, to: 'SUCCEEDED' });
    await expect
      .poll(() => timeline.evaluateAll((li) => li.map((l) => l.dataset['status'])))
      .toEqual(['CREATED', 'RUNNING', 'SUCCEEDED']);
    await expect.poll(() => page.locator('h1#run-title .status').textContent()).toBe('SUCCEEDED');
    await page.screenshot({ path: `${SHOTS}dashboard-run.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows when the live connection drops and when it resumes, and catches up on what happened meanwhile', async () => {
    const project = uniqueProject('drop');
    const before = await createRun(server, { project, name: 'before' });
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);
    await signIn(page);
    await expect.poll(() => badge(page, before.id).textContent()).toBe('CREATED');

    cutOff = true;
    proxy.refuseConnections(true);
    proxy.cutAll();
    await expect
      .poll(() => page.locator('.connection').getAttribute('data-state'))
      .toBe('reconnecting');
    expect(await page.locator('.connection').textContent()).toContain('Connection lost');

    // Changes while the page is cut off.
    const during = await createRun(server, { project, name: 'during' });
    await transitionRun(server, { id: before.id, to: 'RUNNING' });

    proxy.refuseConnections(false);
    await expect
      .poll(() => page.locator('.connection').getAttribute('data-state'), { timeout: 15_000 })
      .toBe('live');
    cutOff = false;
    await expect.poll(() => badge(page, during.id).textContent()).toBe('CREATED');
    await expect.poll(() => badge(page, before.id).textContent()).toBe('RUNNING');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows the newest 50 runs, then 50 more on request; rows on every page stay live, and a reconnect keeps them', async () => {
    const project = uniqueProject('pages');
    const created: { id: string }[] = [];
    for (let i = 0; i < 55; i++)
      created.push(await createRun(server, { project, name: `r${String(i).padStart(2, '0')}` }));
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);
    await signIn(page);
    const rows = page.locator('table.runs tbody tr');
    const shownIds = () => rows.evaluateAll((tr) => tr.map((r) => r.getAttribute('data-run-id')));
    // The API's order (creation time, then id: two runs may share a millisecond).
    const apiOrder = async () =>
      (
        await server.gql<{ runs: { edges: { node: { id: string } }[] } }>(
          `query($p: String!) { runs(filter: { project: $p }, first: 100) { edges { node { id } } } }`,
          { p: project },
        )
      ).data!.runs.edges.map((e) => e.node.id);
    await expect.poll(() => rows.count()).toBe(50);
    expect(await shownIds()).toEqual((await apiOrder()).slice(0, 50));
    expect(await page.locator('.more').textContent()).toContain('Newest 50 runs');

    // The oldest run changes while it is not loaded: "Show more" brings it as it is now.
    const oldest = created[0]!;
    await transitionRun(server, { id: oldest.id, to: 'QUEUED' });
    await page.getByRole('button', { name: 'Show 50 more' }).click();
    await expect.poll(() => rows.count()).toBe(55);
    expect(await shownIds()).toEqual(await apiOrder());
    await expect.poll(() => badge(page, oldest.id).textContent()).toBe('QUEUED');
    expect(await page.locator('.more').textContent()).toContain('55 runs');
    expect(await page.getByRole('button', { name: /more/ }).count()).toBe(0);

    // Live on both pages: a new run on top, a change far down.
    const newest = await createRun(server, { project, name: 'r55' });
    await expect.poll(() => rows.count()).toBe(56);
    expect((await shownIds())[0]).toBe(newest.id);
    await transitionRun(server, { id: created[1]!.id, to: 'RUNNING' });
    await expect.poll(() => badge(page, created[1]!.id).textContent()).toBe('RUNNING');

    // After a reconnect the page loads again, as many runs as were shown (not just 50): a
    // change made to a second-page run while cut off reaches the page only through that load.
    cutOff = true;
    proxy.refuseConnections(true);
    proxy.cutAll();
    await expect
      .poll(() => page.locator('.connection').getAttribute('data-state'))
      .toBe('reconnecting');
    await transitionRun(server, { id: created[2]!.id, to: 'RUNNING' });
    proxy.refuseConnections(false);
    await expect
      .poll(() => page.locator('.connection').getAttribute('data-state'), { timeout: 15_000 })
      .toBe('live');
    cutOff = false;
    await expect.poll(() => badge(page, created[2]!.id).textContent()).toBe('RUNNING');
    expect(await rows.count()).toBe(56);
    expect(await badge(page, oldest.id).textContent()).toBe('QUEUED');
    expect(await badge(page, newest.id).textContent()).toBe('CREATED');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('with a status filter, "Show more" stays while older runs may match, and brings them', async () => {
    const project = uniqueProject('pages-status');
    const created: { id: string }[] = [];
    for (let i = 0; i < 52; i++) {
      const run = await createRun(server, { project, name: `s${String(i).padStart(2, '0')}` });
      await transitionRun(server, { id: run.id, to: 'RUNNING' });
      created.push(run);
    }
    const page = await openPage(
      { width: 1280, height: 800 },
      `#/?project=${project}&status=RUNNING`,
    );
    await signIn(page);
    const rows = page.locator('table.runs tbody tr');
    await expect.poll(() => rows.count()).toBe(50);

    // Every run shown finishes: none of the newest match any more, but two older ones do.
    for (const run of created.slice(2))
      await transitionRun(server, { id: run.id, to: 'SUCCEEDED' });
    await expect.poll(() => rows.count()).toBe(0);
    expect(await page.getByTestId('empty').count()).toBe(0);
    expect(await page.locator('.more').textContent()).toContain('None of the newest runs match');
    await page.getByRole('button', { name: 'Show 50 more' }).click();
    await expect.poll(() => rows.count()).toBe(2);
    expect(await badge(page, created[0]!.id).textContent()).toBe('RUNNING');
    expect(await badge(page, created[1]!.id).textContent()).toBe('RUNNING');
    expect(await page.getByRole('button', { name: /more/ }).count()).toBe(0);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('asks for a token again when the one in use is revoked', async () => {
    const created = await server.gql<{
      createApiToken: { token: string; apiToken: { id: string } };
    }>(
      `mutation { createApiToken(input: { name: "${uniqueProject('viewer')}", role: READ }) { token apiToken { id } } }`,
    );
    const { token, apiToken } = created.data!.createApiToken;
    const page = await openPage({ width: 1280, height: 800 }, '#/');
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    await expect.poll(() => page.locator('.connection').getAttribute('data-state')).toBe('live');

    await server.gql(`mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }`, {
      id: apiToken.id,
    });
    await expect.poll(() => page.getByLabel('API token').isVisible()).toBe(true);
    expect(await page.getByRole('alert').textContent()).toContain('refused or revoked');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows a run's native status beside its own when its dialect is not runstate, kept current live", async () => {
    const project = uniqueProject('dialect');
    const plain = await createRun(server, { project, name: 'plain' });
    const parsl = await createRun(server, { project, name: 'parsl-task', dialect: 'PARSL' });
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);
    await signIn(page);
    // Set on the page once: still there at the end, so nothing below reloaded it.
    await page.evaluate(() => ((window as unknown as { loaded: boolean }).loaded = true));
    const native = (runId: string) => page.locator(`tr[data-run-id="${runId}"] .native`);
    await expect.poll(() => badge(page, parsl.id).textContent()).toBe('CREATED');
    expect(await native(parsl.id).getAttribute('data-native')).toBe('pending');
    expect(await badge(page, plain.id).textContent()).toBe('CREATED');
    expect(await native(plain.id).count()).toBe(0);

    // Into the run's page; a native move there shows in its heading and its timeline live.
    await page.locator(`tr[data-run-id="${parsl.id}"] a`).click();
    const heading = page.locator('h1#run-title');
    await expect.poll(() => heading.locator('.native').getAttribute('data-native')).toBe('pending');
    await transitionRun(server, { id: parsl.id, native: 'launched' });
    await expect.poll(() => heading.locator('.status').textContent()).toBe('SCHEDULED');
    expect(await heading.locator('.native').getAttribute('data-native')).toBe('launched');
    const timeline = page.locator('.timeline li');
    const timelineNative = () =>
      timeline.evaluateAll((li) =>
        li.map((l) => [
          l.dataset['status'],
          l.querySelector<HTMLElement>('.native')?.dataset['native'],
        ]),
      );
    await expect.poll(timelineNative).toEqual([
      ['CREATED', 'pending'],
      ['SCHEDULED', 'launched'],
    ]);

    // Back to the runs: exec_done appears beside SUCCEEDED live, quietly, and is read out whole.
    await page.goBack();
    await expect.poll(() => native(parsl.id).getAttribute('data-native')).toBe('launched');
    await transitionRun(server, { id: parsl.id, native: 'exec_done' });
    await expect.poll(() => badge(page, parsl.id).textContent()).toBe('SUCCEEDED');
    expect(await native(parsl.id).getAttribute('data-native')).toBe('exec_done');
    expect(await native(parsl.id).locator('[aria-hidden=true]').innerText()).toBe(
      '· exec_done (Parsl)',
    );
    expect(await native(parsl.id).getAttribute('title')).toBe('Parsl status exec_done');
    expect(
      await page
        .getByRole('cell', { name: 'SUCCEEDED Parsl status exec_done', exact: true })
        .count(),
    ).toBe(1);
    expect(await native(plain.id).count()).toBe(0);
    await page.screenshot({ path: `${SHOTS}dashboard-dialect.png` });

    // The run's page again: the whole history in Parsl's names beside runstate's.
    await page.locator(`tr[data-run-id="${parsl.id}"] a`).click();
    await expect.poll(timelineNative).toEqual([
      ['CREATED', 'pending'],
      ['SCHEDULED', 'launched'],
      ['SUCCEEDED', 'exec_done'],
    ]);
    expect(await page.evaluate(() => (window as unknown as { loaded?: boolean }).loaded)).toBe(
      true,
    );
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows a run's outcome, exit code and attributes, and each change's outcome, exit code and attempt; an updateRun shows live", async () => {
    const project = uniqueProject('records');
    const run = await createRun(server, {
      project,
      name: 'golden-test',
      attributes: { branch: 'main', shards: 4 },
    });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    await transitionRun(server, {
      id: run.id,
      to: 'FAILED',
      outcome: 'DIFF',
      exitCode: 64,
      meta: { diff: 'out.txt' },
    });
    const update = (input: Record<string, unknown>) =>
      server
        .gql(`mutation($input: UpdateRunInput!) { updateRun(input: $input) { revision } }`, {
          input: { id: run.id, ...input },
        })
        .then((response) => expect(response.errors).toBeUndefined());
    await update({ attributes: { flags: { fast: true, seeds: [1, 2] }, owner: null } });

    // The runs list: the outcome beside the status (the exit code is for the run's page).
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);
    await signIn(page);
    const row = page.locator(`tr[data-run-id="${run.id}"]`);
    await expect.poll(() => badge(page, run.id).textContent()).toBe('FAILED');
    expect(await row.locator('.outcome').getAttribute('data-outcome')).toBe('DIFF');
    expect(await row.locator('.outcome [aria-hidden=true]').innerText()).toBe('· DIFF');

    // Its page: "FAILED · DIFF · exit 64", the attributes as a table, the changes with theirs.
    await row.getByRole('link').click();
    const heading = page.locator('h1#run-title');
    await expect.poll(() => heading.locator('.status').textContent()).toBe('FAILED');
    expect(await heading.locator('.outcome [aria-hidden=true]').innerText()).toBe(
      '· DIFF · exit 64',
    );
    expect(await heading.locator('.outcome').getAttribute('title')).toBe(
      'outcome DIFF, exit code 64',
    );
    const attributes = () =>
      page
        .getByTestId('attributes')
        .locator('tr')
        .evaluateAll((tr) =>
          tr.map((r) => [r.querySelector('th')?.textContent, r.querySelector('td')?.textContent]),
        );
    await expect.poll(attributes).toEqual([
      ['branch', 'main'],
      ['flags', '{"fast":true,"seeds":[1,2]}'],
      ['shards', '4'],
    ]);
    const timeline = () =>
      page
        .locator('.timeline li')
        .evaluateAll((li) =>
          li.map((l) => [
            l.dataset['status'],
            l.querySelector<HTMLElement>('.outcome')?.dataset['outcome'] ?? null,
            l.querySelector<HTMLElement>('.outcome')?.dataset['exitCode'] ?? null,
            l.querySelector<HTMLElement>('.attempt')?.dataset['attempt'] ?? null,
          ]),
        );
    await expect.poll(timeline).toEqual([
      ['CREATED', null, null, null],
      ['RUNNING', null, null, null],
      ['FAILED', 'DIFF', '64', null],
    ]);
    await page.screenshot({ path: `${SHOTS}dashboard-records.png`, fullPage: true });
    // Set on the page once: still there at the end, so nothing below reloaded it.
    await page.evaluate(() => ((window as unknown as { loaded: boolean }).loaded = true));

    // An update arrives live: a key removed, one changed, one added; the name too.
    await update({
      name: 'golden-test-2',
      attributes: { shards: null, branch: 'release', verdict: 'accepted' },
    });
    await expect.poll(attributes).toEqual([
      ['branch', 'release'],
      ['flags', '{"fast":true,"seeds":[1,2]}'],
      ['verdict', 'accepted'],
    ]);
    expect(await heading.textContent()).toContain('golden-test-2');

    // A retry clears the run's outcome and exit code; each change then says its attempt.
    await server.gql(`mutation($id: ID!) { retryRun(id: $id) { __typename } }`, { id: run.id });
    await expect.poll(() => heading.locator('.status').textContent()).toBe('RETRYING');
    expect(await heading.locator('.outcome').count()).toBe(0);
    await expect.poll(timeline).toEqual([
      ['CREATED', null, null, '1'],
      ['RUNNING', null, null, '1'],
      ['FAILED', 'DIFF', '64', '1'],
      ['RETRYING', null, null, '2'],
    ]);
    expect(await page.evaluate(() => (window as unknown as { loaded?: boolean }).loaded)).toBe(
      true,
    );
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('is usable on a phone-sized screen: no sideways scrolling, every run readable', async () => {
    const project = uniqueProject('phone');
    const run = await createRun(server, { project, name: 'on-the-go' });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    const page = await openPage({ width: 390, height: 844 }, `#/?project=${project}`);
    await signIn(page);
    await expect.poll(() => badge(page, run.id).textContent()).toBe('RUNNING');
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    const box = await badge(page, run.id).boundingBox();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: `${SHOTS}dashboard-phone.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows a pipeline's steps as a graph: a box per step in its status color, edges labelled with their condition, all live", async () => {
    const project = uniqueProject('pipeline');
    const parent = await createRun(server, { project, name: 'nightly', rollup: true });
    const step = (op: string, dependencies?: unknown[]) =>
      createRun(server, { project, parentId: parent.id, op, dependencies });
    const a = await step('a');
    const b = await step('b', [{ ref: 'ops.a', when: ['SUCCEEDED'] }]);
    const c = await step('c', [{ ref: 'ops.a', when: ['FAILED', 'UPSTREAM_FAILED'] }]);
    const page = await openPage({ width: 1280, height: 800 }, `#/runs/${parent.id}`);
    await signIn(page);
    const boxes = page.locator('.graph .step');
    const box = (runId: string) => page.locator(`.graph .step[data-run-id="${runId}"]`);
    const edge = (from: string, to: string) =>
      page.locator(`.graph .edge[data-from="${from}"][data-to="${to}"]`);
    const stepCount = (status: string) =>
      page.locator(`.pipeline .counts li[data-status="${status}"] .counts-count`).textContent();
    await expect.poll(() => boxes.count()).toBe(3);
    expect(await edge('a', 'b').locator('.edge-label').textContent()).toBe('SUCCEEDED');
    expect(await edge('a', 'c').locator('.edge-label').textContent()).toBe(
      'FAILED | UPSTREAM_FAILED',
    );
    expect(await page.locator('.graph .edge').count()).toBe(2);
    expect(await backgroundOf(box(a.id))).toBe(CREATED_COLOR);
    expect(await stepCount('CREATED')).toBe('3');
    // Each box is a link to its step, named by its op, status and what it waits for.
    const link = page.getByRole('link', { name: 'b, CREATED, waits for a to be SUCCEEDED' });
    expect(await link.getAttribute('href')).toBe(`#/runs/${b.id}`);
    // Set on the page once: still there at the end, so nothing below reloaded it.
    await page.evaluate(() => ((window as unknown as { loaded: boolean }).loaded = true));

    // A step starts: its box turns blue live, the parent rolls up to RUNNING, the counts follow.
    await transitionRun(server, { id: a.id, to: 'RUNNING' });
    await expect.poll(() => box(a.id).getAttribute('data-status')).toBe('RUNNING');
    await expect.poll(() => backgroundOf(box(a.id))).toBe(RUNNING_COLOR);
    expect(await box(a.id).textContent()).toContain('RUNNING');
    await expect.poll(() => page.locator('h1#run-title .status').textContent()).toBe('RUNNING');
    await expect.poll(() => stepCount('RUNNING')).toBe('1');
    expect(await stepCount('CREATED')).toBe('2');

    // It succeeds: b's condition holds (b is queued), c's never will (c fails upstream).
    await transitionRun(server, { id: a.id, to: 'SUCCEEDED' });
    await expect.poll(() => box(b.id).getAttribute('data-status')).toBe('QUEUED');
    await expect.poll(() => box(c.id).getAttribute('data-status')).toBe('UPSTREAM_FAILED');
    await expect.poll(() => backgroundOf(box(a.id))).toBe(SUCCEEDED_COLOR);
    await expect.poll(() => backgroundOf(box(c.id))).toBe(UPSTREAM_FAILED_COLOR);
    expect(await edge('a', 'b').getAttribute('data-state')).toBe('met');
    expect(await edge('a', 'c').getAttribute('data-state')).toBe('unmet');

    // A step added while the page is open joins the graph, right of its upstream.
    const d = await step('d', [{ ref: 'ops.b' }]);
    await expect.poll(() => boxes.count()).toBe(4);
    expect(await edge('b', 'd').locator('.edge-label').textContent()).toBe('SUCCEEDED');
    const [bBox, dBox] = [await box(b.id).boundingBox(), await box(d.id).boundingBox()];
    expect(dBox!.x).toBeGreaterThan(bBox!.x + bBox!.width);
    await page.screenshot({ path: `${SHOTS}dashboard-pipeline.png`, fullPage: true });

    // A box leads to its step's page, which names its parent and its op.
    await box(b.id).click();
    await expect.poll(() => page.locator('h1#run-title').textContent()).toContain('b');
    expect(await page.getByTestId('parent').textContent()).toBe('nightly');
    expect(await page.locator('.facts').textContent()).toContain('Stepb of nightly');
    expect(await page.evaluate(() => (window as unknown as { loaded?: boolean }).loaded)).toBe(
      true,
    );
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows the runs per status of the current filter above the table, with their total, kept current', async () => {
    const project = uniqueProject('counts');
    const runs = [];
    for (const name of ['one', 'two', 'three'])
      runs.push(await createRun(server, { project, name }));
    await transitionRun(server, { id: runs[1]!.id, to: 'RUNNING' });
    await transitionRun(server, { id: runs[2]!.id, to: 'RUNNING' });
    await transitionRun(server, { id: runs[2]!.id, to: 'SUCCEEDED' });
    const page = await openPage({ width: 1280, height: 800 }, `#/?project=${project}`);
    await signIn(page);
    const counts = page.locator('.counts');
    const count = (status: string) =>
      counts.locator(`li[data-status="${status}"] .counts-count`).textContent();
    const shown = () =>
      counts
        .locator('li[data-status]')
        .evaluateAll((li) =>
          li.map((l) => `${l.dataset['status']} ${l.querySelector('.counts-count')?.textContent}`),
        );
    await expect.poll(() => counts.getByTestId('total').textContent()).toBe('3');
    expect(await shown()).toEqual(['CREATED 1', 'RUNNING 1', 'SUCCEEDED 1']);
    expect(await counts.getAttribute('aria-label')).toBe(`Runs of ${project} by status`);
    expect(await backgroundOf(counts.locator('.counts-segment[data-status="RUNNING"]'))).toBe(
      RUNNING_COLOR,
    );

    // Live: a new run, and a run moving on.
    await createRun(server, { project, name: 'four' });
    await expect.poll(() => counts.getByTestId('total').textContent()).toBe('4');
    await expect.poll(() => count('CREATED')).toBe('2');
    await transitionRun(server, { id: runs[0]!.id, to: 'RUNNING' });
    await expect.poll(shown).toEqual(['CREATED 1', 'RUNNING 2', 'SUCCEEDED 1']);

    // A status's count leads to the runs in it: the counts are the filter's.
    await counts.getByRole('link', { name: 'RUNNING 2' }).click();
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(2);
    await expect.poll(shown).toEqual(['RUNNING 2']);
    expect(await counts.getByTestId('total').textContent()).toBe('2');
    await transitionRun(server, { id: runs[0]!.id, to: 'SUCCEEDED' });
    await expect.poll(shown).toEqual(['RUNNING 1']);
    expect(await counts.getByTestId('total').textContent()).toBe('1');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("shows what a waiting run waits for: its upstreams with their conditions and its blockedReason, live; a scheduled run's time", async () => {
    const project = uniqueProject('waiting');
    const upstream = await createRun(server, { project, name: 'prepare' });
    const waiting = await createRun(server, {
      project,
      name: 'train',
      dependencies: [{ ref: upstream.id }],
    });
    const page = await openPage({ width: 1280, height: 800 }, `#/runs/${waiting.id}`);
    await signIn(page);
    const upstreamItem = page.getByTestId('upstreams').locator(`li[data-run-id="${upstream.id}"]`);
    const reason = page.getByTestId('blocked-reason');
    await expect.poll(() => upstreamItem.textContent()).toBe('prepare CREATED needs SUCCEEDED');
    expect(await upstreamItem.getByRole('link').getAttribute('href')).toBe(`#/runs/${upstream.id}`);
    await expect
      .poll(() => reason.textContent())
      .toBe('Not ready: waiting for prepare to be SUCCEEDED (it is CREATED)');
    expect(await reason.getByRole('link', { name: 'prepare' }).getAttribute('href')).toBe(
      `#/runs/${upstream.id}`,
    );
    expect(await page.locator('h1#run-title .status').textContent()).toBe('CREATED');

    // The upstream moves on: the list and the reason follow.
    await transitionRun(server, { id: upstream.id, to: 'RUNNING' });
    await expect.poll(() => upstreamItem.locator('.status').textContent()).toBe('RUNNING');
    await expect.poll(() => reason.textContent()).toContain('(it is RUNNING)');
    await transitionRun(server, { id: upstream.id, to: 'SUCCEEDED' });
    await expect.poll(() => page.locator('h1#run-title .status').textContent()).toBe('QUEUED');
    await expect.poll(() => reason.count()).toBe(0);
    await expect
      .poll(() => upstreamItem.locator('.condition').getAttribute('data-state'))
      .toBe('met');

    // The upstream's page lists the run waiting for it.
    await upstreamItem.getByRole('link').click();
    await expect.poll(() => page.locator('h1#run-title').textContent()).toContain('prepare');
    const downstream = page.getByTestId('downstreams').locator(`li[data-run-id="${waiting.id}"]`);
    await expect.poll(() => downstream.textContent()).toBe('train QUEUED');

    // A scheduled run says when it starts.
    const at = new Date(Date.now() + 2 * 3_600_000);
    const scheduled = await createRun(server, {
      project,
      name: 'later',
      scheduledAt: at.toISOString(),
    });
    await page.evaluate((id) => (location.hash = `#/runs/${id}`), scheduled.id);
    await expect.poll(() => page.locator('h1#run-title .status').textContent()).toBe('ON_SCHEDULE');
    const when = page.getByTestId('scheduled-at').locator('time');
    expect(new Date((await when.getAttribute('datetime'))!).getTime()).toBe(at.getTime());
    expect(await when.textContent()).toContain('in 2 hours');
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('offers Stop, Retry and Resume to a token that may write, as the lifecycle allows; a refusal is shown as the server typed it; a READ token sees no buttons', async () => {
    const project = uniqueProject('actions');
    const run = await createRun(server, { project, name: 'long-job' });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    const buttons = (page: Page) => page.getByRole('button', { name: /^(Stop|Retry|Resume)$/ });
    const heading = (page: Page) => page.locator('h1#run-title .status');

    // A READ token may look, not act: no buttons at all.
    const reader = await openPage({ width: 1280, height: 800 }, `#/runs/${run.id}`);
    await signIn(reader, await tokenFor('READ'));
    await expect.poll(() => heading(reader).textContent()).toBe('RUNNING');
    expect(await buttons(reader).count()).toBe(0);
    expect(problems).toEqual([]);
    await reader.context().close();

    // A WRITE token, through a socket the test can hold back (the page then lags the run).
    let holding = false;
    const held: (() => void)[] = [];
    const page = await openPage({ width: 1280, height: 800 }, `#/runs/${run.id}`, (context) =>
      context.routeWebSocket(/\/graphql$/, (socket) => {
        const upstream = socket.connectToServer();
        upstream.onMessage((message) => {
          if (holding) held.push(() => socket.send(message));
          else socket.send(message);
        });
      }),
    );
    await signIn(page, await tokenFor('WRITE'));
    const button = (name: string) => page.getByRole('button', { name, exact: true });
    const timeline = () =>
      page.locator('.timeline li').evaluateAll((li) => li.map((l) => l.dataset['status']));
    await expect.poll(() => heading(page).textContent()).toBe('RUNNING');
    expect(await button('Stop').isEnabled()).toBe(true);
    expect(await button('Resume').isEnabled()).toBe(false); // RUNNING cannot go to RESUMING

    await button('Stop').click();
    await expect.poll(() => heading(page).textContent()).toBe('STOPPING');
    expect(await backgroundOf(heading(page))).toBe(STOPPING_COLOR);
    await expect.poll(timeline).toEqual(['CREATED', 'RUNNING', 'STOPPING']);
    await expect.poll(() => button('Stop').isEnabled()).toBe(false);
    expect(await page.getByRole('alert').count()).toBe(0);

    // The worker confirms the stop: the run may be resumed.
    await transitionRun(server, { id: run.id, to: 'STOPPED' });
    await expect.poll(() => button('Resume').isEnabled()).toBe(true);
    expect(await button('Retry').isEnabled()).toBe(false); // STOPPED cannot go to RETRYING

    // Someone else resumes it and it runs again, while the page does not hear of it yet: its
    // Resume is refused by the server, and the refusal is shown as typed.
    holding = true;
    await server.gql(`mutation($id: ID!) { resumeRun(id: $id) { __typename } }`, { id: run.id });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    expect(await heading(page).textContent()).toBe('STOPPED');
    await button('Resume').click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('cannot go from RUNNING to RESUMING');
    // The page reads the run again after the answer: it shows where the run really is.
    await expect.poll(() => heading(page).textContent()).toBe('RUNNING');
    expect(await button('Resume').isEnabled()).toBe(false);
    holding = false;
    for (const send of held.splice(0)) send();
    await expect
      .poll(timeline)
      .toEqual(['CREATED', 'RUNNING', 'STOPPING', 'STOPPED', 'RESUMING', 'RUNNING']);
    expect(await alert.textContent()).toContain('cannot go from RUNNING to RESUMING');
    await page.screenshot({ path: `${SHOTS}dashboard-actions.png` });
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
