/**
 * `npm run openapi`: writes the relay's OpenAPI document (the same one GET /openapi.json serves)
 * to docs/openapi.json, and docs/openapi.html, a self-contained page that renders it: the
 * document is embedded, the renderer is a few lines of plain JavaScript, nothing is fetched from
 * anywhere (open it from disk). `--check` exits 1 if either file is not current (CI, tests).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { buildOpenApiDocument } from "../src/openapi/document.ts";

const root = new URL("../", import.meta.url);
const jsonPath = new URL("docs/openapi.json", root);
const htmlPath = new URL("docs/openapi.html", root);

const doc = buildOpenApiDocument();
const json = `${JSON.stringify(doc, null, 2)}\n`;
// `<` escaped so the embedded document can never close the script element.
const embedded = JSON.stringify(doc).replaceAll("<", "\\u003c");

const RENDER = String.raw`
const doc = JSON.parse(document.getElementById("openapi").textContent);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};
const code = (v) => {
  const text = JSON.stringify(v, null, 2);
  const pre = el("pre");
  for (const part of text.split(/("#\/components\/schemas\/[^"]+")/)) {
    const m = /^"#\/components\/schemas\/([^"]+)"$/.exec(part);
    pre.append(m ? el("a", { href: "#schema-" + m[1] }, part) : part);
  }
  return pre;
};
const md = (s) => {
  const p = el("div", { class: "md" });
  for (const line of (s || "").split("\n")) {
    const d = el("div");
    line.split(/(\x60[^\x60]+\x60)/).forEach((t) => d.append(t.startsWith("\x60") ? el("code", {}, t.slice(1, -1)) : t));
    p.append(d);
  }
  return p;
};
const main = document.getElementById("main");
main.append(el("h1", {}, doc.info.title + " " + doc.info.version), md(doc.info.description));
const toc = el("ul");
main.append(el("h2", {}, "Operations"), toc);
for (const [path, item] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(item)) {
    const id = "op-" + op.operationId;
    toc.append(el("li", {}, el("a", { href: "#" + id }, method.toUpperCase() + " " + path), " " + op.summary));
    const sec = el("section", { id });
    sec.append(el("h2", {}, el("span", { class: "method" }, method.toUpperCase()), " " + path), el("p", {}, el("b", {}, op.summary)), md(op.description));
    const security = (op.security || []).map((s) => Object.keys(s).join(" + ")).join(" or ") || "none";
    sec.append(el("p", {}, "Authentication: " + security));
    if (op.parameters) {
      const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "required"), el("th", {}, "schema"), el("th", {}, "description")));
      for (const p of op.parameters) t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, String(!!p.required)), el("td", {}, code(p.schema)), el("td", {}, p.description)));
      sec.append(el("h3", {}, "Parameters"), t);
    }
    if (op.requestBody) {
      sec.append(el("h3", {}, "Request body"));
      for (const [type, c] of Object.entries(op.requestBody.content)) {
        sec.append(el("p", {}, el("code", {}, type)), code(c.schema));
        for (const [name, ex] of Object.entries(c.examples || {})) sec.append(el("p", {}, "Example: " + (ex.summary || name)), code(ex.value));
      }
    }
    sec.append(el("h3", {}, "Responses"));
    for (const [status, r] of Object.entries(op.responses)) {
      const d = el("details", {}, el("summary", {}, el("b", {}, status), " " + r.description.split("\n")[0]));
      d.append(md(r.description));
      if (r.headers) d.append(el("p", {}, "Headers: ", ...Object.entries(r.headers).map(([h, v]) => el("code", { title: v.description }, h + (v.required ? " (always)" : "") + " "))));
      for (const [type, c] of Object.entries(r.content || {})) {
        d.append(el("p", {}, el("code", {}, type)), code(c.schema));
        for (const [name, ex] of Object.entries(c.examples || {})) d.append(el("p", {}, "Example: " + (ex.summary || name)), code(ex.value));
      }
      sec.append(d);
    }
    main.append(sec);
  }
}
main.append(el("h2", {}, "Error codes"));
const codes = el("table", {}, el("tr", {}, el("th", {}, "code"), el("th", {}, "status"), el("th", {}, "AWS __type (status)"), el("th", {}, "when")));
for (const c of doc["x-error-codes"]) codes.append(el("tr", {}, el("td", {}, el("code", {}, c.code)), el("td", {}, String(c.status)), el("td", {}, c.awsType ? c.awsType + " (" + c.awsStatus + ")" : "-"), el("td", {}, c.when)));
main.append(codes, el("h2", {}, "Security schemes"));
for (const [name, s] of Object.entries(doc.components.securitySchemes)) main.append(el("h3", {}, name), md(s.description), code({ ...s, description: undefined }));
main.append(el("h2", {}, "Schemas"));
for (const [name, s] of Object.entries(doc.components.schemas)) main.append(el("h3", { id: "schema-" + name }, name), code(s));
`;

const html = `<!doctype html>
<!-- Generated by \`npm run openapi\` from the relay's zod schemas; do not edit. -->
<html lang="en">
<head>
<meta charset="utf-8">
<title>${doc.info.title} API</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1em 2em; color: #222; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: 13px; }
code { background: #f0f0f0; padding: 0 .2em; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ddd; padding: .3em; vertical-align: top; text-align: left; }
section { border-top: 2px solid #eee; margin-top: 2em; } .method { background: #1f6feb; color: #fff; padding: 0 .4em; border-radius: 3px; }
details { margin: .4em 0; } summary { cursor: pointer; }
</style>
</head>
<body>
<main id="main"></main>
<script type="application/json" id="openapi">${embedded}</script>
<script>${RENDER}</script>
</body>
</html>
`;

if (process.argv.includes("--check")) {
  const stale = [
    [jsonPath, json],
    [htmlPath, html],
  ].filter(([path, text]) => {
    try {
      return readFileSync(path as URL, "utf8") !== text;
    } catch {
      return true;
    }
  });
  if (stale.length > 0) {
    console.error(`${stale.map(([p]) => (p as URL).pathname).join(", ")} not current: run npm run openapi`);
    process.exit(1);
  }
  console.log("docs/openapi.json and docs/openapi.html are current");
} else {
  writeFileSync(jsonPath, json);
  writeFileSync(htmlPath, html);
  console.log(`wrote docs/openapi.json (${json.length} bytes) and docs/openapi.html`);
}
