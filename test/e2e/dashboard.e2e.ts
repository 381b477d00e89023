import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFlakyProxy } from '../support/flaky-proxy.js';
import { createRun, transitionRun } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = new URL('../../test-results/', import.meta.url).pathname;

/** The lifecycle's colors as the browser reports them. */
const CREATED_COLOR = 'rgb(72, 85, 99)'; // #485563
const RUNNING_COLOR = 'rgb(46, 119, 170)'; // #2e77aa

describe('the dashboard in a real browser', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startFlakyProxy>>;
  let origin: string;
  let browser: Browser;
  const problems: string[] = [];
  /** While the test cuts the page off: its requests may fail at the network, as they should. */
  let cutOff = false;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = await startServer();
    // The browser reaches the service through a proxy the test can cut.
    proxy = await startFlakyProxy(server.url);
    origin = new URL(proxy.url).origin;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  async function openPage(
    viewport: { width: number; height: number },
    hash: string,
  ): Promise<Page> {
    problems.length = 0; // each test answers for its own page
    const context = await browser.newContext({ viewport });
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

  async function signIn(page: Page): Promise<void> {
    await page.getByLabel('API token').fill(TEST_ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    await expect.poll(() => page.locator('.connection').getAttribute('data-state')).toBe('live');
  }

  const badge = (page: Page, runId: string) => page.locator(`tr[data-run-id="${runId}"] .status`);

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
});
