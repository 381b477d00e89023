import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, SHOTS } from '../support/browser.js';
import { createRun, dataOf } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

// GraphiQL as a person uses it, in a real Chromium, with auth on: everything it loads comes from
// runstate itself (a strict CSP says so), the token goes into its Headers tab, and with it the
// docs, autocompletion, queries, mutations and subscriptions (over SSE, which carries the
// headers) all work.

describe('GraphiQL in a real browser', () => {
  let server: TestServer;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServer();
    origin = new URL(server.url).origin;
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Replace an editor's text, as a paste (typing would get Monaco's closing brackets too). */
  async function fill(page: Page, editor: Locator, text: string): Promise<void> {
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.evaluate((t) => navigator.clipboard.writeText(t), text);
    await page.keyboard.press('Control+V');
  }

  it('loads from runstate alone; with a token in its Headers tab it documents, completes and runs queries, mutations and subscriptions', async () => {
    const project = uniqueProject('graphiql');
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    // A step that cannot happen fails where it is, not at the test's timeout.
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Expected: the schema fetched before a token is in the Headers tab (401).
      if (message.type() === 'error' && !/status of 401/.test(message.text()))
        problems.push(`console: ${message.text()}`);
    });

    const response = await page.goto(server.url);
    const csp = response!.headers()['content-security-policy'];
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';");
    const editor = page.getByLabel('Operation Editor');
    const result = page.getByLabel('Result Window');
    const run = () => page.getByRole('button', { name: /Execute query/ }).click();
    // Monaco wraps long lines: compared without white space.
    const resultText = async () => (await result.textContent())?.replace(/\s+/g, '');

    // The token, then the schema again (it was fetched without one when the page opened).
    await page.getByRole('button', { name: 'Headers' }).click();
    await fill(
      page,
      page.locator('.graphiql-editor-tool .monaco-editor').last(),
      JSON.stringify({ Authorization: `Bearer ${TEST_ADMIN_TOKEN}` }),
    );
    await page.getByRole('button', { name: /Re-fetch GraphQL schema/ }).click();

    // The docs list Query's fields.
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = page.getByRole('region', { name: 'Documentation Explorer' });
    await docs.getByRole('link', { name: 'Query' }).click();
    await expect.poll(() => docs.textContent()).toContain('lifecycle');
    const docsText = (await docs.textContent())!;
    for (const field of ['run', 'runs', 'statusChanges']) expect(docsText).toContain(field);
    await page.screenshot({ path: `${SHOTS}graphiql-docs.png` });

    // Autocompletion, from the schema, in the editor's worker.
    await fill(page, editor, '{ lifecy');
    // (Asked again until it shows: a first Ctrl+Space may come before the editor has the text.)
    const suggestions = page.locator('.suggest-widget.visible');
    await expect
      .poll(async () => {
        await page.keyboard.press('Control+Space');
        return suggestions.textContent({ timeout: 1_000 }).catch(() => '');
      })
      .toContain('lifecycle');
    await page.keyboard.press('Escape');

    // A query.
    await fill(page, editor, '{ lifecycle { statuses { status color } } }');
    await run();
    await expect.poll(resultText).toContain('"ON_SCHEDULE"');

    // A mutation.
    await fill(
      page,
      editor,
      `mutation { createRun(input: { project: "${project}", name: "from-graphiql" }) { id name status } }`,
    );
    await run();
    await expect.poll(resultText).toContain('"from-graphiql"');
    expect(await resultText()).toContain('"CREATED"');
    const runs = dataOf(
      await server.gql<{ runs: { edges: { node: { name: string } }[] } }>(
        `query($p: String!) { runs(filter: { project: $p }) { edges { node { name } } } }`,
        { p: project },
      ),
    ).runs.edges.map((e) => e.node.name);
    expect(runs).toEqual(['from-graphiql']);

    // A subscription: it shows the event of a run created meanwhile.
    await fill(
      page,
      editor,
      `subscription { statusChanged(filter: { projects: ["${project}"] }) { runId to } }`,
    );
    await run();
    // Subscribed once the button offers to stop it.
    await expect.poll(() => page.getByRole('button', { name: /Stop/ }).count()).toBe(1);
    const created = await createRun(server, { project, name: 'watched' });
    await expect.poll(resultText).toContain(created.id);
    expect(await resultText()).toContain('"CREATED"');
    await page.screenshot({ path: `${SHOTS}graphiql-subscription.png` });
    await page.getByRole('button', { name: /Stop/ }).click();

    // Everything the page asked for, it asked of runstate.
    const elsewhere = requested.filter(
      (url) => !url.startsWith('data:') && new URL(url).origin !== origin,
    );
    expect(elsewhere).toEqual([]);
    expect(requested.some((url) => url.endsWith('/graphiql/graphiql.js'))).toBe(true);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('GraphiQL off: the GraphQL path answers no page and the files are not served', async () => {
    const { buildApp } = await import('../../src/app.js');
    const { createLogger } = await import('../../src/logger.js');
    const app = buildApp({
      database: server.database,
      logger: createLogger('silent'),
      port: 0,
      host: '127.0.0.1',
      auth: { enabled: true, adminToken: TEST_ADMIN_TOKEN },
      graphiql: false,
    });
    const { url } = await app.start();
    try {
      const page = await fetch(url, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toContain('graphiql');
      const file = await fetch(new URL('/graphiql/graphiql.js', url));
      expect(file.status).toBe(404);
    } finally {
      await app.stop();
    }
  });
});
