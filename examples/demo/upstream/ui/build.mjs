// Bundles src/main.js into dist/assets/ and writes dist/index.html that loads it.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist/assets", { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outfile: "dist/assets/app.js",
  logLevel: "warning",
});
await copyFile("index.html", "dist/index.html");
console.log("built dist/index.html and dist/assets/app.js");
