/**
 * The OpenAPI document as a contract: checks a request or a real Response against what the
 * document says for its route and status (body schema, media type, headers). Runs inside workerd
 * and in Node: the validator is @cfworker/json-schema, which compiles nothing (workerd forbids
 * eval / new Function, which ajv needs).
 */
import { Validator } from "@cfworker/json-schema";
import { openApiJson } from "../../src/openapi/document.ts";

type Json = Record<string, unknown>;
interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema: Json }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Json }> };
  responses: Record<string, ResponseObject>;
}
interface ResponseObject {
  headers?: Record<string, { required?: boolean; schema: Json }>;
  content?: Record<string, { schema: Json }>;
}

const BASE = "https://relay.invalid/openapi.json";

export class Contract {
  readonly doc: Json;
  readonly #validators = new Map<string, Validator>();

  constructor(doc: Json) {
    this.doc = doc;
  }

  /** Validates `value` against the schema at a JSON pointer into the document. */
  validate(pointer: string, value: unknown): string[] {
    let v = this.#validators.get(pointer);
    if (!v) {
      // The subschema itself as the root (the validator indexes no arrays such as `parameters`),
      // its references made absolute into the whole document.
      const sub = JSON.stringify(at(this.doc, pointer)).replaceAll('"$ref":"#/', `"$ref":"${BASE}#/`);
      v = new Validator(JSON.parse(sub), "2020-12", false);
      v.addSchema(structuredClone(this.doc) as never, BASE);
      this.#validators.set(pointer, v);
    }
    const r = v.validate(value);
    return r.valid ? [] : r.errors.map((e) => `${e.instanceLocation}: ${e.error}`);
  }

  /** The operation's path template and pointer for a concrete path, or null if undocumented. */
  route(method: string, pathname: string): { template: string; pointer: string; op: Operation } | null {
    const paths = this.doc.paths as Record<string, Record<string, Operation>>;
    const m = method.toLowerCase();
    const exact = paths[pathname]?.[m];
    if (exact) return { template: pathname, pointer: `/paths/${esc(pathname)}/${m}`, op: exact };
    for (const [template, item] of Object.entries(paths)) {
      if (!template.includes("{") || !item[m]) continue;
      const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
      if (re.test(pathname)) return { template, pointer: `/paths/${esc(template)}/${m}`, op: item[m] };
    }
    return null;
  }

  /** Problems with a request as the document describes it (body, headers, path parameters). */
  checkRequest(method: string, url: string, headers: Record<string, string>, body: unknown): string[] {
    const path = new URL(url, "http://relay.test").pathname;
    const r = this.route(method, path);
    if (!r) return [`${method} ${path} is not in the document`];
    const errors: string[] = [];
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    (r.op.parameters ?? []).forEach((p, i) => {
      let value: string | undefined;
      if (p.in === "header") value = lower[p.name.toLowerCase()];
      else if (p.in === "path") value = pathParam(r.template, path, p.name);
      if (value === undefined) {
        if (p.required) errors.push(`${p.in} parameter ${p.name} is required`);
        return;
      }
      for (const e of this.validate(`${r.pointer}/parameters/${i}/schema`, value)) errors.push(`${p.name}${e}`);
    });
    if (r.op.requestBody) {
      const type = (lower["content-type"] ?? "").split(";")[0]!.trim();
      if (!r.op.requestBody.content[type]) errors.push(`request content-type ${type} not in the document`);
      else
        errors.push(
          ...this.validate(`${r.pointer}/requestBody/content/${esc(type)}/schema`, body).map((e) => `body${e}`),
        );
    }
    return errors;
  }

  /**
   * Problems with a real answer: its status must be documented for the route, its media type
   * listed, its body valid against that schema, its required headers present and every documented
   * header it has valid. An undocumented path or method (404 / 405) is checked as a Problem.
   */
  async checkResponse(method: string, url: string, res: Response): Promise<string[]> {
    const path = new URL(url).pathname;
    const r = this.route(method, path);
    const text = await res.clone().text();
    if (!r) {
      // Not a documented operation: only the generic refusals may come back.
      if (res.status !== 404 && res.status !== 405)
        return [`${method} ${path}: ${res.status} for an undocumented route`];
      return this.#checkBody("/components/schemas/Problem", res, text, "application/problem+json");
    }
    const key = r.op.responses[String(res.status)]
      ? String(res.status)
      : r.op.responses[`${String(res.status)[0]}XX`]
        ? `${String(res.status)[0]}XX`
        : null;
    if (!key) return [`${method} ${r.template}: status ${res.status} is not documented (${text.slice(0, 200)})`];
    const spec = r.op.responses[key]!;
    const pointer = `${r.pointer}/responses/${key}`;
    const errors: string[] = [];
    for (const [name, h] of Object.entries(spec.headers ?? {})) {
      const value = res.headers.get(name);
      if (value === null) {
        if (h.required) errors.push(`header ${name} is required on ${res.status}`);
        continue;
      }
      for (const e of this.validate(`${pointer}/headers/${esc(name)}/schema`, value)) errors.push(`header ${name}${e}`);
    }
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (!spec.content) {
      if (text !== "") errors.push(`${res.status} has a body the document does not describe`);
      return errors;
    }
    if (!spec.content[type]) {
      errors.push(`content-type ${type} not documented for ${res.status} (${Object.keys(spec.content).join(", ")})`);
      return errors;
    }
    errors.push(...(await this.#checkBody(`${pointer}/content/${esc(type)}/schema`, res, text, type)));
    return errors.map((e) => `${method} ${r.template} ${res.status}: ${e}`);
  }

  async #checkBody(pointer: string, res: Response, text: string, type: string): Promise<string[]> {
    const actual = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (actual !== type) return [`content-type ${actual}, expected ${type}`];
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return [`body is not JSON: ${text.slice(0, 100)}`];
    }
    return this.validate(pointer, body).map((e) => `body${e} (${text.slice(0, 300)})`);
  }
}

function at(doc: unknown, pointer: string): unknown {
  let node = doc;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    node = (node as Record<string, unknown>)?.[key];
    if (node === undefined) throw new Error(`nothing at ${pointer} in the document`);
  }
  return node;
}

function esc(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

function pathParam(template: string, path: string, name: string): string | undefined {
  const t = template.split("/");
  const p = path.split("/");
  const i = t.indexOf(`{${name}}`);
  return i >= 0 ? decodeURIComponent(p[i] ?? "") : undefined;
}

let shared: Contract | undefined;

/** The relay's own document, parsed once. */
export function relayContract(): Contract {
  shared ??= new Contract(JSON.parse(openApiJson()) as Json);
  return shared;
}
