// Connects the Vercel AI SDK's MCP client (@ai-sdk/mcp) to a stdio server N times, on its defaults
// (protocolVersionDiscovery on: server/discover first, initialize when no answer comes within 1 s),
// lists the tools and calls one, and prints one JSON line per attempt.
//
//   node connect.mjs LIBRARIES_DIR ATTEMPTS CWD COMMAND [ARGS...]
//
// LIBRARIES_DIR holds node_modules with @ai-sdk/mcp (tests/npm_tools.py, library_dir).
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [libraries, attempts, cwd, command, ...args] = process.argv.slice(2);
const require = createRequire(join(libraries, "package.json"));
const { createMCPClient } = await import(pathToFileURL(require.resolve("@ai-sdk/mcp")).href);
const { StdioMCPTransport } = await import(pathToFileURL(require.resolve("@ai-sdk/mcp/mcp-stdio")).href);
const ATTEMPT_MS = 60_000;

for (let attempt = 1; attempt <= Number(attempts); attempt++) {
  const started = Date.now();
  const late = [];
  let client;
  let timer;
  try {
    const run = (async () => {
      client = await createMCPClient({
        // HOME only: the client passes its own small set (PATH, HOME, USER...) and nothing else.
        transport: new StdioMCPTransport({ command, args, cwd, env: { HOME: process.env.TEST_HOME }, stderr: "ignore" }),
        // A late answer to an abandoned server/discover arrives here; it is not a failure.
        onUncaughtError: (error) => late.push(String(error?.message ?? error).slice(0, 120)),
      });
      const connectedMs = Date.now() - started;
      const listed = await client.listTools();
      const called = await client.callTool({ name: "batch-export-list", arguments: { project_id: 1 } });
      return { connectedMs, tools: listed.tools.length, count: called.structuredContent?.count ?? null };
    })();
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ATTEMPT_MS} ms`)), ATTEMPT_MS);
    });
    const done = await Promise.race([run, timeout]);
    const protocol = client.initializeResult?.protocolVersion ?? null;
    console.log(JSON.stringify({ attempt, ok: true, protocol, ...done, late: late.length }));
  } catch (error) {
    console.log(JSON.stringify({ attempt, ok: false, ms: Date.now() - started, error: String(error?.message ?? error) }));
  } finally {
    clearTimeout(timer);
    await client?.close().catch(() => {});
  }
}
