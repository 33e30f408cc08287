// Starts the release-built server on a free port with a fresh data folder,
// in demo mode, and stops it with SIGTERM after the tests: it must then exit
// cleanly (graceful shutdown), or the run fails.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const repoRoot = path.resolve(__dirname, "..");

export default async function globalSetup() {
  const binary = process.env.ISSUEBRIDGE_E2E_BINARY ?? path.join(repoRoot, "target/release/issuebridge");
  const siteRoot = path.join(repoRoot, "target/site");
  for (const needed of [binary, path.join(siteRoot, "pkg/issuebridge.js")]) {
    if (!existsSync(needed)) {
      throw new Error(`${needed} is missing: run \`make front server\` (or \`make test\`) first`);
    }
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), "issuebridge-e2e-"));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("SENTRY_") || name === "DATABASE_URL" || name === "ISSUEBRIDGE_PUBLIC_URL" || name === "ISSUEBRIDGE_SECRET_KEY") {
      delete env[name];
    }
  }
  Object.assign(env, {
    ISSUEBRIDGE_DATA_DIR: dataDir,
    LEPTOS_SITE_ADDR: "127.0.0.1:0",
    LEPTOS_SITE_ROOT: siteRoot,
    LEPTOS_ENV: "PROD",
    RUST_LOG: env.RUST_LOG ?? "warn",
    // Every test logs in from 127.0.0.1, many times a minute.
    ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE: "100000",
  });

  const server = spawn(binary, ["serve"], { env, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`server did not get ready in 60 s; it printed: ${seen}`)), 60_000);
    server.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = seen.match(/console at (http:\/\/\S+?)\/? /);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready; it printed: ${seen}`));
    });
  });
  process.env.ISSUEBRIDGE_E2E_URL = url;

  return async () => {
    const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
    server.kill("SIGTERM");
    const code = await exited;
    rmSync(dataDir, { recursive: true, force: true });
    if (code !== 0) {
      throw new Error(`server exited with ${code} after SIGTERM; expected a clean exit 0`);
    }
  };
}
