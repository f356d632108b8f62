/// <reference types="vite/client" />
/**
 * Every request the README shows (its curl commands and AWS CLI `--entries`) and every JSON answer
 * it shows, checked against the OpenAPI document: an example that drifts from the API fails here.
 */
import { describe, expect, it } from "vitest";
import readme from "../../README.md?raw";
import { buildOpenApiDocument } from "../../src/openapi/document.ts";
import { Contract } from "../helpers/contract.ts";

const contract = new Contract(buildOpenApiDocument() as unknown as Record<string, unknown>);

/** Fenced blocks of one language. */
function blocks(md: string, lang: string): string[] {
  return [...md.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!);
}

/**
 * Shell commands of a block as words: single and double quotes (which may span lines),
 * backslash-newline continuations, comments; a newline outside quotes ends a command. Enough for
 * the README's examples.
 */
function shellCommands(block: string): Command[] {
  const out: Command[] = [];
  let words: string[] = [];
  let cur = "";
  let inWord = false;
  let start = 0;
  const endWord = () => {
    if (inWord) words.push(cur);
    cur = "";
    inWord = false;
  };
  const endCommand = (i: number) => {
    endWord();
    if (words.length) out.push({ words, text: block.slice(start, i).trim() });
    words = [];
    start = i + 1;
  };
  for (let i = 0; i < block.length; i++) {
    const ch = block[i]!;
    if (ch === "'") {
      const close = block.indexOf("'", i + 1);
      const end = close === -1 ? block.length : close;
      cur += block.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '"') {
      let j = i + 1;
      while (j < block.length && block[j] !== '"') {
        if (block[j] === "\\" && /["\\$`]/.test(block[j + 1] ?? "")) j++;
        cur += block[j];
        j++;
      }
      i = j;
      inWord = true;
    } else if (ch === "\\" && block[i + 1] === "\n") {
      i++;
      endWord();
    } else if (ch === "#" && !inWord) {
      const nl = block.indexOf("\n", i);
      i = (nl === -1 ? block.length : nl) - 1;
    } else if (ch === "\n") {
      endCommand(i);
    } else if (/\s/.test(ch)) {
      endWord();
    } else {
      cur += ch;
      inWord = true;
    }
  }
  endCommand(block.length);
  return out;
}

interface Command {
  words: string[];
  text: string;
}
function commands(md: string): Command[] {
  return blocks(md, "sh").flatMap(shellCommands);
}

function option(words: string[], ...names: string[]): string[] {
  const out: string[] = [];
  words.forEach((w, i) => {
    if (names.includes(w) && words[i + 1] !== undefined) out.push(words[i + 1]!);
  });
  return out;
}

describe("the README's examples against the OpenAPI document", () => {
  const curls = commands(readme).filter((c) => c.words[0] === "curl" && /\/(v1\/|healthz)/.test(c.text));
  const awsCli = commands(readme).filter((c) => c.words[0] === "aws" && c.words[1] === "events");

  it("finds the examples (so a README rewrite cannot silently skip them)", () => {
    expect(curls.length).toBeGreaterThanOrEqual(3);
    expect(awsCli.length).toBeGreaterThanOrEqual(3);
    expect(blocks(readme, "json").length).toBeGreaterThanOrEqual(4);
  });

  it("every curl request is a valid request by the document", () => {
    let bodies = 0;
    for (const c of curls) {
      const url = c.words.find((w) => /^https?:\/\//.test(w))!;
      const data = option(c.words, "-d", "--data");
      const headers: Record<string, string> = {};
      for (const h of option(c.words, "-H", "--header")) {
        const i = h.indexOf(":");
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      const method = option(c.words, "-X")[0] ?? (data.length ? "POST" : "GET");
      const body = data.length ? JSON.parse(data[0]!) : undefined;
      if (body !== undefined) bodies++;
      expect({ example: c.text, errors: contract.checkRequest(method, url, headers, body) }).toEqual({
        example: c.text,
        errors: [],
      });
    }
    expect(bodies).toBeGreaterThanOrEqual(2);
  });

  it("every AWS CLI --entries JSON is a valid POST / body", () => {
    let checked = 0;
    for (const c of awsCli) {
      const entries = option(c.words, "--entries")[0];
      if (!entries?.startsWith("[")) continue; // shorthand syntax, not JSON
      const body = { Entries: JSON.parse(entries) };
      const headers = {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSEvents.PutPartnerEvents",
        "x-amz-date": "20261126T100000Z",
      };
      expect({ example: c.text, errors: contract.checkRequest("POST", "/", headers, body) }).toEqual({
        example: c.text,
        errors: [],
      });
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(1);
  });

  it("every JSON answer shown validates against its response schema", () => {
    const schemas = "/components/schemas";
    for (const text of blocks(readme, "json")) {
      const value = JSON.parse(text) as Record<string, unknown>;
      const pointer =
        "FailedEntryCount" in value
          ? `${schemas}/PutEventsResult`
          : "relayEventId" in value
            ? `${schemas}/EventStatus`
            : "tenantId" in value
              ? `${schemas}/TenantStatus`
              : "code" in value && "status" in value
                ? `${schemas}/Problem`
                : null;
      expect(pointer, text).not.toBeNull();
      expect({ example: text, errors: contract.validate(pointer!, value) }).toEqual({ example: text, errors: [] });
    }
  });
});
