// Drives `ff mcp` with the official MCP TypeScript SDK's client, as an
// agent's tool would:
//
//   node client.mjs FF_BINARY REPOSITORY
//
// Every tool's input and output schema must compile with Ajv's JSON Schema
// 2020-12 validator, and every structured result must validate against its
// tool's output schema. Then: 8 clients creating one issue get one
// worktree; a lease lapses unrenewed and the next holder's fencing token is
// higher; a claim completed by one client is reported completed to the
// others; bad arguments are refused and the server goes on. Prints one line
// per check; exits 1 at the first failure.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [ff, repository] = process.argv.slice(2);
if (!ff || !repository) {
  console.error("usage: node client.mjs FF_BINARY REPOSITORY");
  process.exit(2);
}

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats.default(ajv);
// schemars names the width of numbers in `format`; they are annotations.
for (const f of ["int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float", "double"]) {
  ajv.addFormat(f, true);
}

function check(ok, what) {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

async function connect() {
  const transport = new StdioClientTransport({
    command: ff,
    args: ["--repo", repository, "mcp"],
    env: process.env,
    stderr: "ignore",
  });
  const client = new Client({ name: "ff-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const validators = new Map();
  for (const tool of tools) {
    ajv.compile(tool.inputSchema);
    check(tool.outputSchema !== undefined, `${tool.name} has an output schema`);
    validators.set(tool.name, ajv.compile(tool.outputSchema));
  }
  // Calls `name`; a result that is no error must fit the output schema.
  client.ff = async (name, args) => {
    const result = await client.callTool({ name, arguments: args });
    if (result.isError) {
      // The error `ff --json` prints, as JSON text.
      result.error = JSON.parse(result.content[0].text).error;
    } else {
      const validate = validators.get(name);
      if (!validate(result.structuredContent)) {
        check(false, `${name}: ${JSON.stringify(result.structuredContent)} fits its schema: ${ajv.errorsText(validate.errors)}`);
      }
    }
    return result;
  };
  client.tools = tools;
  return client;
}

const a = await connect();
check(a.tools.length === 16, `the SDK lists ${a.tools.length} tools, every schema compiling with Ajv 2020`);

// One issue, eight clients at once: one worktree, eight answers naming it.
const clients = await Promise.all(Array.from({ length: 8 }, () => connect()));
const created = await Promise.all(clients.map((c) => c.ff("worktree_create", { issue: "42" })));
const paths = new Set(created.map((r) => r.structuredContent?.path));
check(created.every((r) => !r.isError) && paths.size === 1, `8 clients creating issue 42 got one worktree: ${[...paths]}`);
check(created.filter((r) => r.structuredContent.reused === false).length === 1, "exactly one of them made it");
await Promise.all(clients.map((c) => c.close()));

const listed = await a.ff("worktree_list", {});
check(listed.structuredContent.worktrees.length === 1, "worktree_list shows it");

// A lease: held across calls, lapsing without renewal.
const b = await connect();
const held = await a.ff("lock_acquire", { name: "deploy", ttl_seconds: 3 });
check(held.structuredContent.outcome === "acquired", "a takes the lock");
const busy = await b.ff("lock_acquire", { name: "deploy" });
check(busy.structuredContent.outcome === "busy", "b is refused while a holds it");
const next = await b.ff("lock_acquire", { name: "deploy", wait_seconds: 20 });
check(next.structuredContent.outcome === "acquired", "b gets it once a's lease lapses unrenewed");
check(next.structuredContent.fencing_token > held.structuredContent.fencing_token, "with a higher fencing token");
const renew = await a.ff("lock_renew", { lease: held.structuredContent.lease });
check(renew.isError && renew.error.kind === "not_found", "a's lapsed lease cannot be renewed");
await b.ff("lock_release", { lease: next.structuredContent.lease });

// Exactly once: the claim's winner does the work; others hear of it.
const op = { operation: "migrate", parameters: { db: "main" } };
const claim = await a.ff("operation_claim", op);
check(claim.structuredContent.outcome === "claimed", "a claims the operation");
const other = await b.ff("operation_claim", op);
check(other.structuredContent.outcome === "held", "b hears that it runs");
await a.ff("operation_complete", { claim: claim.structuredContent.claim, result: { rows: 3 } });
const done = await b.ff("operation_claim", op);
check(done.structuredContent.outcome === "completed" && done.structuredContent.result.rows === 3, "b is told it completed, with its result, and does not run it");

// Bad arguments: refused, never a crash; the server goes on.
let refused = false;
try {
  const r = await a.callTool({ name: "worktree_create", arguments: { issue: 7, extra: true } });
  refused = r.isError === true;
} catch (e) {
  refused = true;
}
check(refused, "bad arguments are refused");
const bad = await a.ff("worktree_create", { issue: "bad id!" });
check(bad.isError && bad.error.kind === "invalid_input", "a bad issue id is invalid_input");
check(!(await a.ff("lock_list", {})).isError, "the server still answers");

await a.close();
await b.close();
console.log("all checks passed");
