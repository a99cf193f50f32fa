// Headless Chromium flow through BrokeForge's web UI, started by crates/web/tests/browser.rs
// with BASE_URL, SETUP_URL and SCREENSHOT_DIR in the environment. It exits non-zero with a
// message on the first expectation that does not hold.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.BASE_URL;
const setupUrl = process.env.SETUP_URL;
const shots = process.env.SCREENSHOT_DIR;
mkdirSync(shots, { recursive: true });

const email = "ada@example.com";
const password = "correct horse battery staple";

function expect(condition, message) {
  if (!condition) {
    throw new Error("expectation failed: " + message);
  }
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(shots, name + ".png"), fullPage });
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent() || "").trim();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light" });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  page.setDefaultTimeout(15000);

  // First run: the one-time setup link creates the administrator.
  await page.goto(setupUrl);
  expect((await text(page, "h1")) === "Create the administrator", "the setup page opens");
  await shot(page, "01-setup");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=name]", "Ada Lovelace");
  await page.fill("input[name=password]", "short");
  await page.fill("input[name=password_confirmation]", "different");
  await page.click("main button[type=submit]");
  expect((await text(page, "#password-error")).includes("12 characters"), "a short password is refused on its field");
  await page.fill("input[name=password]", password);
  await page.fill("input[name=password_confirmation]", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(base + "/?notice=welcome");
  expect((await text(page, "h1")) === "Dashboard", "setup signs the administrator in");
  await shot(page, "02-dashboard-empty");

  // Sign out, then sign in (a wrong password first).
  await page.click("[data-testid=sign-out]");
  await page.waitForURL(/\/login/);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", "not the password");
  await page.click("main button[type=submit]");
  expect((await text(page, "[data-testid=login-error]")).includes("not right"), "a wrong password is explained");
  await shot(page, "03-login-error");
  await page.fill("input[name=password]", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(base + "/");

  // Create a server record: an internal address is refused on its field first.
  await page.click("text=Add server");
  await page.waitForURL(/\/servers\/new/);
  await shot(page, "04-server-form");
  await page.fill("input[name=name]", "web-1");
  await page.fill("input[name=public_address]", "127.0.0.1");
  await page.selectOption("select[name=provider]", "hetzner");
  await page.selectOption("select[name=database]", "mariadb");
  await page.click("main button[type=submit]");
  expect((await text(page, "#public_address-error")).includes("loopback"), "a loopback address is refused");
  await shot(page, "05-server-form-errors");
  await page.fill("input[name=public_address]", "203.0.113.10");
  await page.click("main button[type=submit]");
  await page.waitForURL(/\/servers\/\d+\?notice=server_created/);
  expect((await text(page, "h1")).startsWith("web-1"), "the server page shows the new server");
  await shot(page, "06-server");
  const serverUrl = page.url().split("?")[0];

  // Onboarding: the bootstrap line to copy, and the numbered stages waiting for it.
  const line = await text(page, "#bootstrap-command");
  expect(/^curl -fsSL \S+\/bootstrap\/[0-9a-f]{64} \| sudo bash$/.test(line.trim()), "the bootstrap line is shown: " + line);
  expect((await text(page, "[data-stage=waiting_for_connection]")).includes("1. Waiting for connection"), "stage 1 is listed");
  expect((await page.getAttribute("[data-stage=waiting_for_connection]", "class")).includes("status-running"), "stage 1 runs");
  await page.click("form[action$='/bootstrap-line/revoke'] button");
  await page.waitForURL(/notice=bootstrap_line_revoked/);
  expect((await page.locator("#bootstrap-command").count()) === 0, "a revoked line is gone");
  await page.click("[data-testid=new-bootstrap-line]");
  await page.waitForURL(/notice=bootstrap_line_issued/);
  const renewed = await text(page, "#bootstrap-command");
  expect(renewed.trim() !== line.trim() && renewed.includes("/bootstrap/"), "a new line replaces the old one");
  await shot(page, "06b-server-bootstrap-line");

  // Watch a job's progress update live, without reloading the page.
  await page.fill("input[name=steps]", "5");
  await page.fill("input[name=step_ms]", "700");
  await page.click("[data-testid=run-diagnostics]");
  await page.waitForURL(/\/jobs\/\d+$/);
  await page.evaluate(() => { window.__sameDocument = true; });
  // Catch the page mid-run: a middle step with its matching percentage, pushed by the server.
  const midway = await page.waitForFunction(() => {
    const step = /Step ([2-4]) of 5/.exec(document.getElementById("current-step").textContent);
    const percentage = document.getElementById("percentage").textContent.trim();
    return step && percentage === (Number(step[1]) - 1) * 20 + "%" ? percentage : false;
  });
  expect(/^(20|40|60)%$/.test(await midway.jsonValue()), "the percentage moves while the job runs");
  await shot(page, "07-job-running");
  await page.waitForFunction(() => document.getElementById("percentage").textContent.trim() === "100%");
  await page.waitForFunction(() => document.querySelector("#job-state .badge").textContent.trim() === "succeeded");
  expect(await page.evaluate(() => window.__sameDocument === true), "progress arrived without a reload");
  expect((await page.locator("#milestones li").count()) === 5, "five milestones are listed");
  await shot(page, "08-job-succeeded");

  // A failed step shows its masked command, exit code and stderr tail, with a retry button.
  await page.goto(serverUrl);
  await page.click("summary:has-text('Simulate a failure')");
  await page.fill("input[name=steps]", "4");
  await page.fill("input[name=step_ms]", "300");
  await page.fill("input[name=fail_at_step]", "3");
  await page.fill("input[name=fail_command]", "mysql -u root -p*** -e 'CREATE DATABASE shop'");
  await page.fill("input[name=fail_exit_code]", "2");
  await page.fill("textarea[name=fail_stderr]", "ERROR 1007 (HY000): Can't create database 'shop'; database exists");
  await page.click("[data-testid=run-diagnostics]");
  await page.waitForURL(/\/jobs\/\d+$/);
  await page.locator("[data-testid=failure]").waitFor({ state: "visible" });
  expect((await text(page, "[data-testid=failure-command]")) === "mysql -u root -p*** -e 'CREATE DATABASE shop'", "the masked command is shown");
  expect((await text(page, "[data-testid=failure-exit-code]")) === "2", "the exit code is shown");
  expect((await text(page, "[data-testid=failure-stderr]")).includes("database exists"), "the stderr tail is shown");
  await page.locator("[data-testid=retry]").waitFor({ state: "visible" });
  await shot(page, "09-job-failed");
  await page.click("[data-testid=retry]");
  await page.waitForURL(/notice=job_retried/);
  expect((await text(page, ".notice")).includes("queued again"), "the retry is confirmed");
  await page.locator("[data-testid=failure]").waitFor({ state: "visible" });

  // The other pages.
  await page.goto(base + "/jobs");
  await shot(page, "10-jobs");
  await page.goto(base + "/activity");
  expect((await page.content()).includes("Created server"), "the activity log lists the creation");
  await shot(page, "11-activity");
  await page.goto(base + "/account");
  await shot(page, "12-account");
  await page.goto(base + "/account/tokens");
  await page.fill("input[name=name]", "laptop");
  await page.check("input[name=scopes][value=write]");
  await page.click("button:has-text('Create token')");
  expect((await text(page, "#created-token")).startsWith("bf_"), "a new token is shown once");
  await shot(page, "13-token-created");
  await page.goto(base + "/api");
  await shot(page, "14-api-reference", false);
  await page.goto(base + "/admin/users");
  await shot(page, "15-users");
  await page.goto(base + "/");
  await shot(page, "16-dashboard");

  // Dark mode and a phone-sized screen.
  const dark = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "dark", storageState: await context.storageState() });
  const darkPage = await dark.newPage();
  await darkPage.goto(base + "/");
  await shot(darkPage, "17-dashboard-dark");
  await darkPage.goto(page.url().replace(/\/$/, "") + "/jobs");
  await shot(darkPage, "18-jobs-dark");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "light", storageState: await context.storageState() });
  const phonePage = await phone.newPage();
  await phonePage.goto(serverUrl);
  await shot(phonePage, "19-server-phone");

  // Sign out.
  await page.click("[data-testid=sign-out]");
  await page.waitForURL(/\/login\?notice=signed_out/);
  expect((await text(page, ".notice")).includes("signed out"), "signing out is confirmed");
  await page.goto(base + "/servers");
  await page.waitForURL(/\/login\?next=/);
  await shot(page, "20-signed-out");
  console.log("browser flow passed");
} catch (error) {
  console.error(error && error.stack ? error.stack : String(error));
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
