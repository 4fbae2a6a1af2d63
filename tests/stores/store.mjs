// Objects of the emulated stores the store tests use, below Lifeboat: create the
// container (Azurite) and list, read and overwrite objects (to damage one on purpose).
//   node store.mjs azure|gcs ENDPOINT BUCKET create|list PREFIX|get NAME FILE|put NAME FILE
import crypto from "node:crypto";
import fs from "node:fs";

const [kind, endpoint, bucket, op, ...args] = process.argv.slice(2);
// Azurite's well-known development account (public, documented by Microsoft).
const account = "devstoreaccount1";
const accountKey = Buffer.from(
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
  "base64",
);

async function azure(method, path, query = {}, body = undefined, headers = {}) {
  const date = new Date().toUTCString();
  const all = { "x-ms-date": date, "x-ms-version": "2021-08-06", ...headers };
  const canonicalHeaders = Object.keys(all)
    .filter((h) => h.startsWith("x-ms-"))
    .sort()
    .map((h) => `${h}:${all[h]}\n`)
    .join("");
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `\n${k}:${query[k]}`)
    .join("");
  const length = body && body.length ? String(body.length) : "";
  const toSign = [method, "", "", length, "", all["Content-Type"] ?? "", "", "", "", "", "", ""].join("\n") +
    "\n" + canonicalHeaders + `/${account}/${account}${path}` + canonicalQuery;
  const signature = crypto.createHmac("sha256", accountKey).update(toSign, "utf8").digest("base64");
  const search = new URLSearchParams(query).toString();
  const res = await fetch(`${endpoint}${path}${search ? "?" + search : ""}`, {
    method,
    body,
    headers: { ...all, Authorization: `SharedKey ${account}:${signature}` },
  });
  return res;
}

async function fail(res) {
  console.error(`${op}: HTTP ${res.status}: ${await res.text()}`);
  process.exit(1);
}

if (kind === "azure") {
  if (op === "create") {
    const res = await azure("PUT", `/${bucket}`, { restype: "container" });
    if (res.status !== 201 && res.status !== 409) await fail(res);
  } else if (op === "list") {
    const res = await azure("GET", `/${bucket}`, { comp: "list", prefix: args[0], restype: "container" });
    if (!res.ok) await fail(res);
    const xml = await res.text();
    for (const m of xml.matchAll(/<Name>([^<]*)<\/Name>/g)) console.log(m[1]);
  } else if (op === "get") {
    const res = await azure("GET", `/${bucket}/${args[0]}`);
    if (!res.ok) await fail(res);
    fs.writeFileSync(args[1], Buffer.from(await res.arrayBuffer()));
  } else if (op === "put") {
    const body = fs.readFileSync(args[1]);
    const res = await azure("PUT", `/${bucket}/${args[0]}`, {}, body, { "x-ms-blob-type": "BlockBlob" });
    if (res.status !== 201) await fail(res);
  }
} else if (kind === "gcs") {
  const base = `${endpoint}/storage/v1/b/${bucket}/o`;
  if (op === "create") {
    // The emulator creates its default bucket itself.
  } else if (op === "list") {
    const res = await fetch(`${base}?prefix=${encodeURIComponent(args[0])}`);
    if (!res.ok) await fail(res);
    for (const item of (await res.json()).items ?? []) console.log(item.name);
  } else if (op === "get") {
    const res = await fetch(`${base}/${encodeURIComponent(args[0])}?alt=media`);
    if (!res.ok) await fail(res);
    fs.writeFileSync(args[1], Buffer.from(await res.arrayBuffer()));
  } else if (op === "put") {
    const res = await fetch(
      `${endpoint}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(args[0])}`,
      { method: "POST", body: fs.readFileSync(args[1]), headers: { "Content-Type": "application/octet-stream" } },
    );
    if (!res.ok) await fail(res);
  }
} else {
  console.error(`unknown store ${kind}`);
  process.exit(2);
}
