// notes2fhir browser page: annotate a note through /v1/annotate and show the record.
// Note text is only ever put into the page as text nodes (textContent), never as HTML.
"use strict";

const KNOWN_LABELS = new Set(["PROBLEM", "DRUG", "DRUG_CLASS", "ALLERGEN", "NO_KNOWN_ALLERGY", "TEST", "PROCEDURE"]);
const FACTOR_NAMES = {
  bmi: "BMI",
  ckd: "Chronic kidney disease",
  cad: "Coronary artery disease",
  pad: "Peripheral artery disease",
  family_history_premature_cad: "Family history of premature CAD",
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** An element with optional class and text content (text is never parsed as HTML). */
function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function tableRow(cells) {
  const row = document.createElement("tr");
  for (const cell of cells) row.append(element("td", cell));
  return row;
}

function fillTable(table, rows, emptyText) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const cell = element("td", emptyText, "empty");
    cell.colSpan = table.tHead.rows[0].cells.length;
    const row = element("tr");
    row.append(cell);
    body.append(row);
  }
}

async function postNote(format, text) {
  let response;
  try {
    response = await fetch(`v1/annotate?format=${format}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: null, text }),
    });
  } catch (err) {
    throw new ApiError("network_error", `The service could not be reached (${err.message}).`);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const error = payload && payload.error;
    throw new ApiError(error ? error.code : `http_${response.status}`,
      error ? error.message : response.statusText || "Request failed.");
  }
  if (payload && payload.error) throw new ApiError(payload.error.code, payload.error.message);
  return payload;
}

function showError(error) {
  $("error-code").textContent = error.code || "error";
  $("error-message").textContent = error.message;
  $("error-box").hidden = false;
}

/** The tooltip / details text of one mention: label, assertion, subject, section, codes, cues, source. */
function describeMention(m) {
  const lines = [`${m.label} "${m.text}" [${m.start}-${m.end}]`, `assertion: ${m.assertion}`];
  lines.push(`subject: ${m.subject}${m.relationship ? ` (${m.relationship})` : ""}`);
  lines.push(`section: ${m.section || "none"}`);
  if (m.codes.length) {
    lines.push("codes: " + m.codes.map((c) => `${c.system} ${c.code}${c.display ? ` ${c.display}` : ""}`).join("; "));
  }
  for (const [name, value] of Object.entries(m.attributes || {})) {
    lines.push(`${name}: ${value.text ?? value.category ?? JSON.stringify(value)}`);
  }
  for (const cue of m.cues || []) lines.push(`cue (${cue.category}): "${cue.text ?? "section"}" rule ${cue.rule}`);
  lines.push(`source: ${m.source}, score ${m.score}`);
  return lines.join("\n");
}

function showMentionDetails(event) {
  $("mention-details").textContent = event.currentTarget.title;
}

function renderNote(text, mentions) {
  const view = $("note-view");
  const ordered = [...mentions].sort((a, b) => a.start - b.start || b.end - a.end);
  const parts = [];
  let cursor = 0;
  for (const m of ordered) {
    if (m.start < cursor) continue; // nested or overlapping: the outer mention is shown
    parts.push(document.createTextNode(text.slice(cursor, m.start)));
    const label = KNOWN_LABELS.has(m.label) ? m.label : "other";
    const mark = element("mark", text.slice(m.start, m.end),
      `mention label-${label} assertion-${m.assertion} subject-${m.subject}`);
    mark.title = describeMention(m);
    mark.tabIndex = 0;
    mark.dataset.mentionId = m.id;
    mark.addEventListener("mouseenter", showMentionDetails);
    mark.addEventListener("focus", showMentionDetails);
    parts.push(mark);
    cursor = m.end;
  }
  parts.push(document.createTextNode(text.slice(cursor)));
  view.replaceChildren(...parts);
  $("mention-details").textContent = "";
}

function isAllergyEntry(m) {
  return m.label === "NO_KNOWN_ALLERGY" || "allergy" in (m.attributes || {});
}

function renderReactions(record) {
  const byId = new Map(record.mentions.map((m) => [m.id, m]));
  const rows = [];
  const withReaction = new Set();
  for (const r of record.relations) {
    const from = byId.get(r.from);
    const to = byId.get(r.to);
    withReaction.add(r.from);
    rows.push(tableRow([from ? from.text : r.from, to ? to.text : r.to, r.type.replaceAll("_", " "), r.method,
      r.score.toFixed(2)]));
  }
  for (const m of record.mentions) {
    if (isAllergyEntry(m) && !withReaction.has(m.id)) {
      rows.push(tableRow([m.text, "none stated", "allergy", m.source, m.score.toFixed(2)]));
    }
  }
  fillTable($("adr-table"), rows, "No adverse drug reactions or allergies found.");
}

function factorName(key) {
  const name = FACTOR_NAMES[key] || key.replace(/_/g, " ");
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function renderRiskFactors(riskFactors) {
  const rows = [];
  let disclaimer = "";
  if (riskFactors) {
    const evidence = riskFactors.evidence || {};
    for (const [key, value] of Object.entries(riskFactors.profile || {})) {
      const quotes = (evidence[key] || []).map((e) => `"${e.text}"`).join("; ");
      rows.push(tableRow([factorName(key), value ?? "not stated", quotes]));
    }
    const ascvd = riskFactors.ascvd;
    if (ascvd) {
      const missing = (ascvd.missing || []).map((name) => name.replaceAll("_", " ")).join(", ");
      const value = ascvd.percent !== null && ascvd.percent !== undefined
        ? `${ascvd.percent}% (${ascvd.equation || "10-year risk"})`
        : `not computed: missing ${missing || "inputs"}`;
      const notes = [...(ascvd.notes || [])];
      if (ascvd.percent !== null && ascvd.percent !== undefined && missing) notes.push(`missing: ${missing}`);
      rows.push(tableRow(["10-year ASCVD risk", value, notes.join("; ")]));
      disclaimer = ascvd.disclaimer || "";
    }
  }
  fillTable($("risk-table"), rows, "No risk-factor profile for this note.");
  $("risk-disclaimer").textContent = disclaimer;
}

function renderBundle(bundle) {
  const count = (bundle.entry || []).length;
  $("fhir-panel").querySelector("summary").textContent = `FHIR Bundle (JSON, ${count} resources)`;
  $("fhir-json").textContent = JSON.stringify(bundle, null, 2);
}

async function annotate(event) {
  event.preventDefault();
  const text = $("note-input").value;
  const button = $("annotate-button");
  $("error-box").hidden = true;
  button.disabled = true;
  $("status").textContent = "Annotating…";
  try {
    const [record, bundle] = await Promise.all([postNote("record", text), postNote("fhir", text)]);
    renderNote(text, record.mentions);
    renderReactions(record);
    renderRiskFactors(record.risk_factors);
    renderBundle(bundle);
    $("results").hidden = false;
    $("status").textContent = `${record.mentions.length} mentions, ${record.relations.length} relations.`;
  } catch (error) {
    $("results").hidden = true;
    $("status").textContent = "";
    showError(error instanceof ApiError ? error : new ApiError("page_error", error.message));
  } finally {
    button.disabled = false;
  }
}

async function loadSamples() {
  const response = await fetch("samples.json");
  const samples = await response.json();
  const select = $("sample-select");
  for (const sample of samples) {
    const option = element("option", sample.title);
    option.value = sample.id;
    select.append(option);
  }
  select.addEventListener("change", () => {
    const sample = samples.find((s) => s.id === select.value);
    if (sample) $("note-input").value = sample.text;
  });
}

async function loadInfo() {
  const response = await fetch("v1/info");
  if (!response.ok) return;
  const info = await response.json();
  $("pipeline-info").textContent = `Pipeline ${info.pipeline} (notes2fhir ${info.version})`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("annotate-form").addEventListener("submit", annotate);
  $("note-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("annotate-form").requestSubmit();
  });
  loadSamples();
  loadInfo();
});
