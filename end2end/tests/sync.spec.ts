import { test, expect, Page, BrowserContext } from "@playwright/test";

// Two-way sync in the browser: cards move by mouse and keyboard, the change
// reaches the simulated Sentry, and open boards follow webhooks live.

let pageErrors: string[] = [];

function watchErrors(page: Page) {
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(`${message.text()} at ${message.location().url}`);
  });
}

test.beforeEach(async ({ page }) => {
  pageErrors = [];
  watchErrors(page);
});

test.afterEach(() => {
  expect(pageErrors, "errors in the page").toEqual([]);
});

const SAMPLE_TITLE = "TypeError: Cannot read properties of undefined (reading 'cart')";

// Logs in as Jane through the simulated Sentry; returns the simulator's
// address (its consent page is served there).
async function loginAsJane(page: Page): Promise<string> {
  await page.goto("/");
  await page.getByRole("link", { name: "Log in with Sentry" }).click();
  const sentry = new URL(page.url()).origin;
  await page.getByRole("button", { name: /^Approve as Jane Doe/ }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  return sentry;
}

async function openHydrated(page: Page, path: string) {
  const response = await page.goto(path);
  expect(response?.status()).toBe(200);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

async function sendSampleEvents(page: Page) {
  await openHydrated(page, "/deliveries");
  await page.getByRole("button", { name: "Send sample events" }).click();
  await expect(page.getByRole("status").filter({ hasText: /sent 5 signed webhooks/ })).toBeVisible();
}

function column(page: Page, status: string) {
  return page.locator(`.column[data-status="${status}"]`);
}

test("two open boards show a new ticket from a webhook without a reload", async ({ page, context }) => {
  await loginAsJane(page);
  const other = await context.newPage();
  watchErrors(other);
  await openHydrated(other, "/");
  await openHydrated(page, "/");
  // Neither page navigates again: a marker on each window would be lost.
  for (const board of [page, other]) {
    await board.evaluate(() => ((window as any).sameDocument = true));
  }
  const samples = (board: Page) => column(board, "todo").locator(".card", { hasText: SAMPLE_TITLE });
  const before = await samples(page).count();

  const sender = await context.newPage();
  watchErrors(sender);
  await sendSampleEvents(sender);

  for (const board of [page, other]) {
    await expect(samples(board)).toHaveCount(before + 1, { timeout: 15000 });
    expect(await board.evaluate(() => (window as any).sameDocument)).toBe(true);
  }
});

test("a card dragged to Done resolves its issue in Sentry, and Sentry's sidebar links the ticket", async ({ page, context }) => {
  const sentry = await loginAsJane(page);
  await sendSampleEvents(page);
  await openHydrated(page, "/");
  const card = column(page, "todo").locator(".card", { hasText: SAMPLE_TITLE }).first();
  await expect(card).toBeVisible({ timeout: 15000 });
  const id = await card.getAttribute("data-ticket");
  const key = (await card.locator(".ticket-id").textContent())!.trim();

  await card.dragTo(column(page, "done"));
  await expect(column(page, "done").locator(`.card[data-ticket="${id}"]`)).toBeVisible();
  await expect(page.getByTestId("board-notice")).toHaveText(`${key} moved to Done.`);

  // The ticket page links the Sentry issue; the simulated Sentry's page for
  // it says resolved, and its sidebar links back to the ticket.
  await column(page, "done").locator(`.card[data-ticket="${id}"] .title a`).click();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const issueLink = page.getByTestId("linked-issues").getByRole("link").first();
  const issueUrl = await issueLink.getAttribute("href");
  expect(issueUrl!.startsWith(sentry)).toBe(true);
  const issuePage = await context.newPage();
  await expect(async () => {
    await issuePage.goto(issueUrl!);
    await expect(issuePage.getByTestId("sim-status")).toHaveText("resolved", { timeout: 500 });
    await expect(issuePage.getByTestId("sim-links")).toContainText(key, { timeout: 500 });
  }).toPass({ timeout: 15000 });

  // A comment written on the ticket appears on the issue in Sentry.
  await page.getByLabel("New comment").fill("Fixed by the cart guard in 4.2");
  await page.getByRole("button", { name: "Comment" }).click();
  await expect(page.getByTestId("comments")).toContainText("Fixed by the cart guard in 4.2");
  await expect(async () => {
    await issuePage.goto(issueUrl!);
    await expect(issuePage.getByTestId("sim-comments")).toContainText("Fixed by the cart guard in 4.2", { timeout: 500 });
  }).toPass({ timeout: 15000 });
  // Sentry's echo of our own comment does not add it twice.
  await page.waitForTimeout(1500);
  await expect(page.getByTestId("comments").getByText("Fixed by the cart guard in 4.2")).toHaveCount(1);
  await expect(page.getByTestId("history")).toContainText("moved to Done");
  await expect(page.getByTestId("ticket-notice")).toHaveText("Comment added.");

  // The Outbox lists what was told to Sentry about it.
  await openHydrated(page, "/outbox");
  const rows = page.getByTestId("outbox").locator("tr", { has: page.getByRole("link", { name: key, exact: true }) });
  await expect(rows.filter({ hasText: "status" }).first()).toContainText("Sent");
  await expect(rows.filter({ hasText: "new comment" }).first()).toContainText("Sent");
  await expect(rows.filter({ hasText: "link in Sentry's sidebar" }).first()).toContainText("Sent");
  await page.getByRole("tab", { name: "Failed" }).click();
  await expect(page.getByTestId("outbox-counts")).toContainText("sent");
});

test("a card moves by keyboard, and the ticket page edits status and description", async ({ page }) => {
  await loginAsJane(page);
  const card = column(page, "todo").locator(".card").first();
  const id = await card.getAttribute("data-ticket");
  await card.focus();
  await page.keyboard.press("Shift+ArrowRight");
  const moved = column(page, "in_progress").locator(`.card[data-ticket="${id}"]`);
  await expect(moved).toBeVisible();
  await expect(moved).toBeFocused();

  await moved.locator(".title a").click();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByTestId("ticket-status")).toHaveValue("in_progress");
  await page.getByTestId("ticket-status").selectOption("wont_do");
  await expect(page.getByTestId("ticket-notice")).toHaveText("Status saved.");

  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await page.getByLabel("Description (Markdown)").fill("**Root cause**: a race.\n\n<script>alert(1)</script>");
  await page.getByRole("button", { name: "Save description" }).click();
  await expect(page.getByTestId("description").locator("strong")).toHaveText("Root cause");
  await expect(page.getByTestId("description")).toContainText("<script>alert(1)</script>");
  await expect(page.getByTestId("description").locator("script")).toHaveCount(0);
});

test("a half-written comment survives a live update of the ticket", async ({ page, context }) => {
  await loginAsJane(page);
  await sendSampleEvents(page);
  await openHydrated(page, "/");
  const card = column(page, "todo").locator(".card", { hasText: SAMPLE_TITLE }).first();
  await expect(card).toBeVisible({ timeout: 15000 });
  await card.locator(".title a").click();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("New comment").fill("Half a thought");

  // Someone else moves the ticket meanwhile; this page shows it live.
  const other = await context.newPage();
  watchErrors(other);
  await openHydrated(other, page.url().replace(/^https?:\/\/[^/]+/, ""));
  await other.getByTestId("ticket-status").selectOption("in_progress");
  await expect(other.getByTestId("ticket-notice")).toHaveText("Status saved.");

  await expect(page.getByTestId("ticket-status")).toHaveValue("in_progress", { timeout: 15000 });
  await expect(page.getByLabel("New comment")).toHaveValue("Half a thought");
});
