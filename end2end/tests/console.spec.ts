import { test, expect, Page } from "@playwright/test";

// Every test fails on an uncaught error in the page: a broken WASM module
// only shows up there.
let pageErrors: string[] = [];

test.beforeEach(async ({ page }) => {
  pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(`${message.text()} at ${message.location().url}`);
  });
  // A Content-Security-Policy violation fails the test like an error.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
    });
  });
});

test.afterEach(() => {
  expect(pageErrors, "errors in the page").toEqual([]);
});

// Logs in through the simulated Sentry's consent page, as the person whose
// button says `name`, and lands on the board.
async function loginAs(page: Page, name: string) {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=/);
  await page.getByRole("link", { name: "Log in with Sentry" }).click();
  await page.getByRole("button", { name: new RegExp(`^Approve as ${name}`) }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByTestId("viewer")).toContainText(name);
}

async function openHydrated(page: Page, path: string) {
  const response = await page.goto(path);
  expect(response?.status()).toBe(200);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

test("the board is server-rendered with the demo tickets and hydrates", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/");
  await expect(page).toHaveTitle("Board · issuebridge");
  await expect(page.getByRole("navigation", { name: "Console" }).getByRole("link")).toHaveText([
    "Board",
    "Deliveries",
    "Outbox",
    "Installations",
    "Teams",
    "Components",
    "Code mappings",
    "Settings",
    "Activity",
  ]);
  await expect(page.getByText("Demo mode")).toBeVisible();
  await expect(page.getByTestId("ticket-count")).toHaveText("4 tickets");
  await expect(page.locator(".column[data-status=in_progress] .card")).toHaveCount(1);
});

test("the filter box narrows the board once hydrated", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/");
  const filter = page.getByRole("searchbox", { name: "Filter tickets" });
  await filter.fill("payment");
  await expect(page.getByTestId("ticket-count")).toHaveText("1 of 4 tickets");
  await expect(page.locator(".card")).toHaveCount(1);
  await expect(page.locator(".card .title")).toHaveText("ConnectionResetError in payment webhook");

  await filter.fill("ada@example.com");
  await expect(page.getByTestId("ticket-count")).toHaveText("2 of 4 tickets");

  await filter.fill("no such ticket");
  await expect(page.locator(".card")).toHaveCount(0);

  await filter.fill("");
  await expect(page.getByTestId("ticket-count")).toHaveText("4 tickets");
});

test("navigation moves between pages in the browser", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/");
  const nav = page.getByRole("navigation", { name: "Console" });

  await nav.getByRole("link", { name: "Installations" }).click();
  await expect(page).toHaveURL(/\/installations$/);
  await expect(page.getByRole("cell", { name: "demo-org", exact: true })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Installations" })).toHaveAttribute("aria-current", "page");

  await nav.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByText("SQLite")).toBeVisible();

  await nav.getByRole("link", { name: "Deliveries" }).click();
  await expect(page.getByTestId("delivery-count")).toBeVisible();

  await nav.getByRole("link", { name: "Board" }).click();
  await expect(page.getByTestId("ticket-count")).toHaveText("4 tickets");
});

test("an unknown page answers 404 with the console around it", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Not found" })).toBeVisible();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  // Chromium reports the document's own 404 on the console; that one is
  // expected, anything else is not.
  const documentNotFound = "Failed to load resource: the server responded with a status of 404 (Not Found)";
  const isDocument = (e: string) => e.startsWith(documentNotFound) && e.endsWith("/no-such-page");
  expect(pageErrors.filter(isDocument)).toHaveLength(1);
  pageErrors = pageErrors.filter((e) => !isDocument(e));
});

test("operations endpoints answer", async ({ request }) => {
  expect((await request.get("/healthz")).status()).toBe(200);
  const ready = await request.get("/readyz");
  expect(ready.status()).toBe(200);
  expect(await ready.json()).toEqual({ status: "ready", database: "SQLite" });
  const metrics = await (await request.get("/metrics")).text();
  expect(metrics).toContain('issuebridge_http_requests_total{method="GET",route="/",status="200"}');
});

test("demo mode installs the app into a new organization from the console", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/installations");
  await expect(page.getByRole("cell", { name: "demo-org", exact: true })).toBeVisible();
  await page.getByRole("button", { name: "Install into a new demo organization" }).click();
  await expect(page.getByRole("status").filter({ hasText: /^Installed/ })).toHaveText("Installed into demo-org-2.");
  const row = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "demo-org-2", exact: true }) });
  await expect(row).toBeVisible();
  await expect(row.getByText("installed", { exact: true })).toBeVisible();

  // Server-rendered the same way after a reload.
  await openHydrated(page, "/installations");
  await expect(page.getByRole("cell", { name: "demo-org-2", exact: true })).toBeVisible();

  // And uninstalled again, once confirmed: tokens gone, tickets kept, the
  // row says so.
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "Uninstall from demo-org-2" }).click();
  const again = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "demo-org-2", exact: true }) });
  await expect(again.getByText("uninstalled", { exact: true })).toBeVisible();
});

test("demo mode sends sample events that land in the delivery log", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/deliveries");
  await page.getByRole("button", { name: "Send sample events" }).click();
  await expect(page.getByRole("status").filter({ hasText: /sent 5 signed webhooks/ })).toBeVisible();
  for (const event of ["issue.created", "error.created", "comment.created", "event_alert.triggered", "metric_alert.critical"]) {
    await expect(page.getByRole("cell", { name: event, exact: true })).toBeVisible();
  }

  // Filtering goes through the URL, so a filtered view can be shared.
  await page.getByLabel("Resource").selectOption("comment");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/resource=comment/);
  await expect(page.getByRole("cell", { name: "comment.created", exact: true })).toBeVisible();
  await expect(page.getByRole("cell", { name: "issue.created", exact: true })).toHaveCount(0);
});

test("the worker applies sample events: a ticket on the board, each delivery in full", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/deliveries");
  await page.getByRole("button", { name: "Send sample events" }).click();
  await expect(page.getByRole("status").filter({ hasText: /sent 5 signed webhooks/ })).toBeVisible();

  // The worker polls; the log says what it did once it has. The newest row
  // is this test's own delivery (an earlier test sent one too, which may be
  // the only one applied yet), so wait on that row and open that delivery.
  const newest = page.getByRole("row").nth(1);
  await expect(async () => {
    await openHydrated(page, "/deliveries?resource=issue&action=created");
    await expect(newest.getByRole("cell", { name: /^opened IB-\d+ for issue/ })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15000 });

  // One delivery in full: headers without secrets, the body, the attempts.
  await newest.getByRole("link", { name: /^Delivery \d+ in full$/ }).click();
  await expect(page).toHaveURL(/\/deliveries\/\d+$/);
  await expect(page.getByRole("heading", { name: "Headers" })).toBeVisible();
  await expect(page.getByText("sentry-hook-resource")).toBeVisible();
  await expect(page.getByTestId("delivery-body")).toContainText('"action": "created"');
  await expect(page.getByRole("cell", { name: "processed", exact: true }).first()).toBeVisible();

  // And the ticket it opened is on the board.
  await openHydrated(page, "/");
  await expect(page.getByText("TypeError: Cannot read properties of undefined (reading 'cart')").first()).toBeVisible();
});

test("the demo admin changes a setting and sees it in Activity", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/settings");
  const settings = page.getByRole("form", { name: "Settings of demo-org" });
  const mapping = settings.getByRole("textbox", { name: /User mapping/ });

  // A bad line is named next to the field, and nothing is saved.
  await mapping.fill("jane@example.com = not an email");
  await settings.getByRole("button", { name: "Save" }).click();
  await expect(settings.getByRole("alert")).toHaveText('Line 1: "not an email" is not an email address.');

  await mapping.fill("jane@example.com = jane@board.example");
  await settings.getByRole("button", { name: "Save" }).click();
  await expect(settings.getByRole("status")).toHaveText("Saved.");

  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Activity" }).click();
  const change = page.getByRole("row").filter({ hasText: "changed settings" }).first();
  await expect(change).toContainText("jane@example.com");
  await expect(change).toContainText("maps jane@example.com to jane@board.example");
  await expect(page.getByRole("row").filter({ hasText: "logged in with Sentry" }).first()).toBeVisible();
});

test("a plain member sees demo-org but may not change its settings", async ({ page }) => {
  await loginAs(page, "Sam Member");
  await expect(page.getByText("ConnectionResetError in payment webhook")).toBeVisible();
  await openHydrated(page, "/settings");
  const settings = page.getByRole("form", { name: "Settings of demo-org" });
  await expect(settings.getByText("You may look, not change")).toBeVisible();
  await expect(settings.getByRole("button", { name: "Save" })).toHaveCount(0);
  await openHydrated(page, "/installations");
  await expect(page.getByRole("button", { name: /^Uninstall/ })).toHaveCount(0);
});

test("another organization's member sees none of demo-org, and logs out", async ({ page }) => {
  await loginAs(page, "Olga Other");
  await expect(page.getByTestId("viewer")).toContainText("other-org");
  await expect(page.getByText("No tickets yet.")).toBeVisible();
  await expect(page.getByText("ConnectionResetError")).toHaveCount(0);
  await openHydrated(page, "/installations");
  await expect(page.getByText("Not installed in any Sentry organization yet.")).toBeVisible();
  await openHydrated(page, "/deliveries");
  await expect(page.getByTestId("delivery-count")).toHaveText("No deliveries here.");

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/installations");
  await expect(page).toHaveURL(/\/login\?next=%2Finstallations$/);
});

test("the Components page searches tickets, reloads assignees by team, and creates a ticket whose page opens", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/components");
  await page.getByLabel("Sentry issue").selectOption({ label: "API-14 · KeyError: 'currency' in price formatting" });

  // Create: the title comes from the issue, as Sentry fills issue.title.
  const create = page.getByRole("region", { name: "Link Issue" });
  await expect(create.getByLabel("Title *")).toHaveValue("KeyError: 'currency' in price formatting");
  // The assignee depends on the team: none for the default team, the
  // members once Engineering is chosen.
  const team = create.locator("#create-team");
  const assignee = create.locator("#create-assignee");
  await expect(team).toHaveValue("IB");
  await expect(assignee).toHaveAttribute("data-options", "0");
  await team.selectOption("ENG");
  await expect(assignee).toHaveAttribute("data-options", "3");
  await expect(assignee.locator("option")).toHaveText(["—", "ada@example.com", "grace@example.com", "jane@example.com"]);
  await assignee.selectOption("grace@example.com");
  await create.getByRole("button", { name: "Create ticket" }).click();
  const outcome = page.getByTestId("issue-link-outcome");
  await expect(outcome).toContainText("Sentry would show ENG#ENG-1");

  // Link: the ticket search narrows as one types.
  await create.getByRole("tab", { name: "Link" }).click();
  const tickets = create.locator("#link-ticket");
  await expect(tickets.locator("option").nth(2)).toBeAttached();
  await create.getByRole("searchbox", { name: "Search Ticket" }).fill("payment");
  await expect(tickets).toHaveAttribute("data-options", "1");
  await expect(tickets.locator("option").nth(1)).toHaveText("IB-2 · ConnectionResetError in payment webhook");
  await create.getByRole("searchbox", { name: "Search Ticket" }).fill("eng-1");
  await expect(tickets.locator("option").nth(1)).toHaveText(/^ENG-1 · KeyError/);

  // The created ticket's page: what Sentry's sidebar links to.
  await outcome.getByRole("link", { name: "ENG-1" }).click();
  await expect(page).toHaveURL(/\/tickets\/ENG-1\?installation=/);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("KeyError: 'currency' in price formatting");
  await expect(page.getByTestId("ticket-status")).toHaveValue("todo");
  await expect(page.getByLabel("Assignee")).toHaveValue("grace@example.com");
  await expect(page.getByTestId("linked-issues")).toContainText("API-14");
  await expect(page.getByLabel("Team")).toHaveValue("ENG");
  await expect(page.getByLabel("Team").locator("option:checked")).toHaveText("Engineering (ENG)");

  // Every request went to the endpoints Sentry calls, and is in the log.
  await openHydrated(page, "/components");
  await expect(page.getByTestId("component-requests")).toContainText("issue-link:create");
  await expect(page.getByTestId("component-requests")).toContainText("select:assignees");
});

test("alert-rule settings are refused with what to fix, then saved", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/components");
  const alert = page.getByRole("region", { name: "Alert rule action" });
  await alert.locator("#alert-team").selectOption("ENG");
  await alert.getByLabel(/^Title template/).fill("{title} on {host}");
  await alert.getByRole("button", { name: "Save rule" }).click();
  await expect(page.getByTestId("alert-outcome")).toContainText("Sentry refuses to save the rule: issuebridge: the title template uses {host}");
  await alert.getByLabel(/^Title template/).fill("[{level}] {title}");
  await alert.getByRole("button", { name: "Save rule" }).click();
  await expect(page.getByTestId("alert-outcome")).toContainText("Sentry saves the rule: issuebridge: Alerts will open tickets on Engineering (ENG)");
});

test("a stacktrace link opens the mapped file, or offers to add a mapping", async ({ page, baseURL }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/components");
  const installation = await page.locator("#component-installation option").first().getAttribute("value");
  const link = (project: string, file: string, line: string) =>
    `/sentry/stacktrace-link?installationId=${installation}&projectSlug=${project}&lineNo=${line}&filename=${encodeURIComponent(file)}`;

  // The demo's mapping sends web's src/ to GitHub.
  const mapped = await page.request.get(link("web", "webpack:///./src/cart.js", "12"), { maxRedirects: 0 });
  expect(mapped.status()).toBe(302);
  expect(mapped.headers()["location"]).toBe("https://github.com/getsentry/sentry/blob/master/web/src/cart.js#L12");

  // No mapping for this frame: the page says so and offers to add one.
  const unmapped = await page.goto(link("ios", "Sources/App/Main.swift", "7"));
  expect(unmapped?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "No code mapping for this frame" })).toBeVisible();
  // Chromium reports the page's own 404 on the console; only that is expected.
  pageErrors = pageErrors.filter((e) => !(e.includes("status of 404") && e.includes("/sentry/stacktrace-link")));
  await page.getByRole("link", { name: "Add a code mapping" }).click();
  await expect(page).toHaveURL(/\/code-mappings\?/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const form = page.getByRole("form", { name: "New code mapping" });
  await expect(form.getByLabel("Project")).toHaveValue("ios");
  await expect(form.getByLabel("Stack root")).toHaveValue("Sources/App");
  await form.getByLabel("Source root").fill("app");
  await form.getByLabel("Provider").selectOption("template");
  await form.getByLabel("Repository (or URL template)").fill(`${baseURL}/sentry/schema.json?file={path}&line={line}`);
  await form.getByRole("button", { name: "Save mapping" }).click();
  await expect(page.getByTestId("mapping-change")).toContainText("Saved: mapped ios Sources/App/");

  // Followed again, the link now opens the file (here, on this site).
  await page.goto(link("ios", "Sources/App/Main.swift", "7"));
  await expect(page).toHaveURL(`${baseURL}/sentry/schema.json?file=app/Main.swift&line=7`);
  // Chromium asks a JSON document's site for /favicon.ico, which this one
  // does not serve (its pages name /favicon.svg).
  pageErrors = pageErrors.filter((e) => !e.endsWith("/favicon.ico"));
});

test("teams are managed in the console", async ({ page }) => {
  await loginAs(page, "Jane Doe");
  await openHydrated(page, "/teams");
  const teams = page.getByRole("region", { name: "Teams of demo-org" });
  await teams.getByLabel("New team's key").fill("ops");
  await teams.getByLabel("New team's name").fill("Operations");
  await teams.getByRole("button", { name: "Add team" }).click();
  await expect(page.getByTestId("team-change")).toHaveText("Done: made team OPS.");
  const ops = teams.locator("tr[data-team=OPS]");
  await ops.getByLabel("New member of OPS").fill("Olga@Example.com");
  await ops.getByRole("button", { name: "Add member" }).click();
  await expect(ops).toContainText("olga@example.com");
  await ops.getByRole("button", { name: "Remove olga@example.com" }).click();
  await expect(ops).not.toContainText("olga@example.com");
});
