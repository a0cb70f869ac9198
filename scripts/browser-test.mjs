// Drives the operator page of a running callvault in Chromium: signs in with the admin
// token, finds the one failed job, clicks Replay, and waits until the page shows the job
// pending or running and then archived, and the recording's duration check complete; opens
// the recording's audit trail (its archived record), erases it, and sees the erasure there.
//
//   node scripts/browser-test.mjs BASE_URL ADMIN_TOKEN
//
// (or CALLVAULT_URL / CALLVAULT_ADMIN_TOKEN). playwright-core comes from
// scripts/browser/node_modules; browser-test.sh installs it and sets up the scenario.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("./browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const baseUrl = (process.argv[2] || process.env.CALLVAULT_URL || "").replace(/\/$/, "");
const token = process.argv[3] || process.env.CALLVAULT_ADMIN_TOKEN || "";
if (!baseUrl || !token) {
  console.error("usage: node scripts/browser-test.mjs BASE_URL ADMIN_TOKEN");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const ARCHIVE_TIMEOUT_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS || 90_000);

function log(message) {
  console.log(`browser-test: ${message}`);
}

const profile = mkdtempSync(join(tmpdir(), "callvault-chromium-"));
// launchPersistentContext is how Playwright takes a fresh --user-data-dir.
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
// Refused requests (the wrong-token attempt) are logged by Chromium as console errors too;
// only script errors count.
page.on("console", (message) => {
  if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
    consoleErrors.push(message.text());
  }
});
page.on("pageerror", (error) => consoleErrors.push(String(error)));

let failed = false;
try {
  await page.goto(`${baseUrl}/admin/ui`);

  // The page holds nothing until it has the token.
  await page.locator("#login").waitFor({ state: "visible" });
  if (await page.locator("#app").isVisible()) throw new Error("data shown before the token was given");
  await page.fill("#token", "not-the-token");
  await page.click("#login button[type=submit]");
  await page.locator("#login-error").filter({ hasText: "refused" }).waitFor();
  log("a wrong token is refused");

  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  log("signed in");

  const failedRows = page.locator("#attention tr[data-job-id]");
  await failedRows.first().waitFor();
  const count = await failedRows.count();
  if (count !== 1) throw new Error(`expected one failed job on the page, found ${count}`);
  const jobId = await failedRows.first().getAttribute("data-job-id");
  const shownState = (await failedRows.first().locator(".state-cell").innerText()).trim();
  const lastError = (await failedRows.first().locator("td.error").innerText()).trim();
  if (shownState !== "failed") throw new Error(`job ${jobId} shows ${shownState}, not failed`);
  if (!lastError) throw new Error(`job ${jobId} shows no last error`);
  log(`job ${jobId} is failed: ${lastError}`);

  // Record every state the page renders for the job, from before the click: a fast worker
  // can archive it within a second, and each render must still be seen.
  await page.evaluate((id) => {
    window.__jobStates = [];
    const record = () => {
      const cell = document.querySelector(`#replayed tr[data-job-id="${id}"] .state-cell`);
      const text = cell ? cell.textContent.trim() : "";
      const states = window.__jobStates;
      if (text && states[states.length - 1] !== text) states.push(text);
    };
    new MutationObserver(record).observe(document.getElementById("replayed"), {
      childList: true,
      subtree: true,
      characterData: true,
    });
  }, jobId);
  await page.click(`#attention button.replay[data-job-id="${jobId}"]`);
  const settled = await page.waitForFunction(
    () => {
      const states = window.__jobStates;
      const last = states[states.length - 1];
      return ["archived", "failed", "expired"].includes(last) ? states : false;
    },
    null,
    { polling: "raf", timeout: ARCHIVE_TIMEOUT_MS },
  );
  const seen = await settled.jsonValue();
  log(`after Replay the page showed job ${jobId}: ${seen.join(" → ")}`);
  if (seen[seen.length - 1] !== "archived") throw new Error(`job ${jobId} ended ${seen[seen.length - 1]} again`);
  if (!["pending", "running"].includes(seen[0])) throw new Error("the page did not show the job pending or running first");
  const stillFailed = await page.locator(`#attention tr[data-job-id="${jobId}"]`).count();
  if (stillFailed !== 0) throw new Error("the job is still listed as needing attention");
  // Once archived, the recording's duration check shows beside it: the emulator's metadata
  // document gives the chunk the 10 minutes the event announces.
  await page
    .locator("#recordings td.evidence")
    .filter({ hasText: "complete" })
    .first()
    .waitFor({ timeout: ARCHIVE_TIMEOUT_MS });
  log("the recording shows its duration check");

  // The recording's audit trail: the worker's archive record of the replayed chunk.
  const firstRecording = page.locator("#recordings tr[data-recording-id]").first();
  await firstRecording.locator("button.trail").click();
  const archivedRecord = page.locator('#trail tr[data-action="archived"]');
  await archivedRecord.first().waitFor({ timeout: ARCHIVE_TIMEOUT_MS });
  const archivedText = await archivedRecord.first().innerText();
  if (!archivedText.includes("system:worker")) throw new Error(`the archived record does not name the worker: ${archivedText}`);
  if (!archivedText.includes("chunk 0")) throw new Error(`the archived record does not name its chunk: ${archivedText}`);
  const trailActions = await page.locator("#trail tr[data-action]").evaluateAll((rows) => rows.map((row) => row.dataset.action));
  if (trailActions.indexOf("replayed") > trailActions.indexOf("archived")) throw new Error(`the trail is not in order: ${trailActions.join(", ")}`);
  log(`the recording's audit trail shows ${trailActions.join(" → ")}`);

  // Erase it from the page: a reason in the prompt, then the confirmation; the row then says
  // erased and offers no Erase button.
  const dialogs = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.type());
    if (dialog.type() === "prompt") await dialog.accept("browser test: erase after replay");
    else await dialog.accept();
  });
  const recordingRow = page.locator("#recordings tr[data-recording-id]").first();
  await recordingRow.locator("button.erase").click();
  await recordingRow
    .locator(".state-cell")
    .filter({ hasText: "erased" })
    .waitFor({ timeout: ARCHIVE_TIMEOUT_MS });
  if (dialogs.join(",") !== "prompt,confirm") throw new Error(`Erase asked ${dialogs.join(",")}, not a reason then a confirmation`);
  if (await recordingRow.locator("button.erase").count()) throw new Error("an erased recording still offers Erase");
  log("the recording was erased from the page after a reason and a confirmation");
  // The trail outlives the recording's objects and ends with the erasure, naming its reason.
  await recordingRow.locator("button.trail").click();
  const erasedRecord = page.locator('#trail tr[data-action="erased"]');
  await erasedRecord.first().waitFor({ timeout: ARCHIVE_TIMEOUT_MS });
  if (!(await erasedRecord.first().innerText()).includes("browser test: erase after replay")) throw new Error("the erasure record does not show its reason");
  log("the trail shows the erasure with its reason");
  if (consoleErrors.length) throw new Error(`the page logged errors: ${consoleErrors.join("; ")}`);
  log(`passed: ${seen.join(" → ")}`);
} catch (error) {
  failed = true;
  const shot = join(tmpdir(), `callvault-browser-test-${Date.now()}.png`);
  await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
  console.error(`browser-test: FAILED: ${error.message} (screenshot: ${shot})`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
