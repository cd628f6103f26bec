// The page of `skyscript-db serve`: four views (search, pair, overview, SQL) chosen by the URL's
// hash, each filled from the JSON API. No library, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function fixed(value, digits = 3) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function showError(message) {
  const box = $("message");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// ---- search -------------------------------------------------------------------------------

function card(result) {
  return el("a", {class: "card", href: `#/pair/${result.pair_id}`, "data-pair": result.pair_id},
    result.image_url ? el("img", {src: result.image_url, alt: result.title})
                     : el("div", {class: "noimage"}, "image not served"),
    el("div", {class: "caption"}, result.title),
    el("div", {class: "multi"}, result.title_multi_objects),
    el("div", {class: "meta"},
      `score ${fixed(result.score)} · similarity ${fixed(result.similarity)} ` +
      `(top ${fixed(result.similarity_rank_pct, 1)} %) · ${result.collection_code} · ` +
      `${fixed(result.gsd_m, 2)} m/px · ${result.acquired || "date unknown"}`));
}

function showResults(results, took) {
  const grid = $("results");
  grid.replaceChildren(...results.map(card));
  $("search-status").textContent = `${results.length} results in ${took} ms`;
}

async function runSearch() {
  const params = new URLSearchParams({k: $("k").value});
  const where = $("where").value.trim();
  if (where) params.set("where", where);
  const file = $("upload").files[0];
  const started = performance.now();
  let body;
  if (file) {
    params.set("against", $("against").value);
    body = await api(`/api/search/image?${params}`, {method: "POST", body: file});
  } else {
    params.set("q", $("q").value);
    body = await api(`/api/search?${params}`);
  }
  showResults(body.results, Math.round(performance.now() - started));
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  if ($("q").value.trim()) $("upload").value = "";  // typed text wins over an earlier upload
  runSearch().catch((e) => showError(e.message));
});
$("upload").addEventListener("change", () => {
  showError("");
  runSearch().catch((e) => showError(e.message));
  $("q").value = "";
});

// ---- pair ---------------------------------------------------------------------------------

function shape(object, gsd) {
  const role = object.centre ? "centre" : object.described ? "described" : "other";
  const attrs = {class: `shape ${role}`, "data-object": `${object.osm_type}/${object.osm_id}`};
  if (!object.svg) return null;
  if (object.svg.startsWith("cx=")) {
    const [, cx, cy] = object.svg.match(/cx="([^"]+)" cy="([^"]+)"/);
    return el("svg:circle", {...attrs, cx, cy, r: 2.5 * gsd});
  }
  return el("svg:path", {...attrs, d: object.svg});
}

function drawOverlay(pair) {
  const overlay = $("pair-overlay");
  const width = pair.x_max - pair.x_min;
  const height = pair.y_max - pair.y_min;
  overlay.setAttribute("viewBox", `${pair.x_min} ${-pair.y_max} ${width} ${height}`);
  overlay.setAttribute("preserveAspectRatio", "none");
  // Drawn last on top: the centre object over the others.
  const ordered = [...pair.objects].reverse();
  overlay.replaceChildren(...ordered.map((o) => shape(o, pair.gsd_m)).filter(Boolean));
}

function tagTable(object) {
  const rows = object.tags.map((tag) => el("tr", {class: tag.visible_here ? "here" : null},
    el("td", {}, tag.key), el("td", {}, tag.value),
    el("td", {}, tag.visible ? "visible" : "not visible"),
    el("td", {}, tag.max_gsd_m === null ? "–" : `≤ ${tag.max_gsd_m} m`),
    el("td", {}, fixed(tag.p_visible, 2)),
    el("td", {}, tag.source || "–", tag.rule_reason ? ` (${tag.rule_reason})` : "")));
  const head = el("tr", {}, ...["key", "value", "verdict", "max GSD", "p(visible)", "source"]
    .map((h) => el("th", {}, h)));
  return el("table", {class: "tags"}, head, ...rows);
}

function objectBlock(object) {
  const role = object.centre ? "centre object" : object.described ? "a tag visible at this GSD"
                                                                  : "no tag visible at this GSD";
  const block = el("details", {class: "object", "data-object": `${object.osm_type}/${object.osm_id}`,
                               open: object.centre ? "" : null},
    el("summary", {}, `${object.osm_type} ${object.osm_id} · ${object.kind} · ${role}`),
    tagTable(object));
  const highlight = (on) => document.querySelectorAll(
    `.shape[data-object="${object.osm_type}/${object.osm_id}"]`)
    .forEach((s) => s.classList.toggle("highlight", on));
  block.addEventListener("mouseenter", () => highlight(true));
  block.addEventListener("mouseleave", () => highlight(false));
  return block;
}

function facts(pair) {
  const rows = [
    ["object", `${pair.osm_type} ${pair.osm_id} (${pair.kind}), selected by ${pair.selected_by || "–"}`],
    ["collection", `${pair.collection_code}, ${pair.image_source || ""}`],
    ["GSD", `${pair.gsd_m} m/px`],
    ["size", `${pair.width_px} × ${pair.height_px} px (${fixed(pair.x_max - pair.x_min, 0)} × ` +
             `${fixed(pair.y_max - pair.y_min, 0)} m, EPSG:${pair.utm_epsg})`],
    ["acquired", pair.acquired || "unknown"],
    ["similarity (title)", fixed(pair.similarity_title)],
    ["similarity (multi-object)", fixed(pair.similarity_title_multi_objects)],
    ["rank", `top ${fixed(pair.similarity_rank_pct, 1)} % overall, ` +
             `${fixed(pair.similarity_rank_pct_in_collection, 1)} % in its collection`],
    ["split", `${pair.split || "–"} (cell ${pair.cell_id}, block ${pair.block_id})`],
    ["model", `${pair.model_id}${pair.untrained ? " (UNTRAINED)" : ""}`],
    ["bounds", `${fixed(pair.west, 5)}, ${fixed(pair.south, 5)}, ${fixed(pair.east, 5)}, ${fixed(pair.north, 5)}`],
  ];
  return rows.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value)));
}

async function showPair(pairId) {
  const pair = await api(`/api/pairs/${pairId}`);
  $("pair-image").src = pair.image_url || "";
  $("pair-image").alt = pair.title;
  drawOverlay(pair);
  $("pair-title").textContent = pair.title;
  $("pair-multi").textContent = pair.title_multi_objects;
  // databases embedded before natural captions existed have no such column
  $("pair-natural").textContent = pair.title_multi_objects_natural || "";
  $("pair-facts").replaceChildren(...facts(pair));
  $("pair-objects").replaceChildren(...pair.objects.map(objectBlock));
  $("pair-neighbours").replaceChildren(...pair.neighbours.map(card));
}

// ---- overview -----------------------------------------------------------------------------

function table(target, rows) {
  if (!rows.length) {
    target.replaceChildren(el("tr", {}, el("td", {}, "no rows")));
    return;
  }
  const columns = Object.keys(rows[0]);
  target.replaceChildren(el("tr", {}, ...columns.map((c) => el("th", {}, c))),
    ...rows.map((row) => el("tr", {}, ...columns.map((c) => el("td", {}, row[c] ?? "–")))));
}

function histogram(bins, cuts) {
  const width = 520, height = 200, pad = 24;
  const lo = bins[0].start, hi = bins[bins.length - 1].stop;
  const most = Math.max(...bins.map((b) => b.pairs), 1);
  const x = (v) => pad + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (width - 2 * pad);
  const y = (n) => height - pad - (n / most) * (height - 2 * pad);
  const svg = el("svg:svg", {viewBox: `0 0 ${width} ${height}`, class: "histogram"});
  for (const b of bins) {
    svg.append(el("svg:rect", {x: x(b.start), y: y(b.pairs), width: Math.max(x(b.stop) - x(b.start) - 1, 1),
                               height: height - pad - y(b.pairs), class: "bar"},
      el("svg:title", {}, `${fixed(b.start)} – ${fixed(b.stop)}: ${b.pairs} pairs`)));
  }
  cuts.forEach((cut, i) => {
    if (cut.similarity === null) return;
    svg.append(el("svg:line", {x1: x(cut.similarity), x2: x(cut.similarity), y1: pad / 2,
                               y2: height - pad, class: "cut"}),
               el("svg:text", {x: x(cut.similarity) + 3, y: pad / 2 + 10 + 11 * i, class: "label"},
                  `top ${cut.pct} %`));
  });
  svg.append(el("svg:text", {x: pad, y: height - 6, class: "label"}, fixed(lo)),
             el("svg:text", {x: width - pad, y: height - 6, class: "label end"}, fixed(hi)));
  return svg;
}

function bars(rows) {
  const most = Math.max(...rows.map((r) => r.pairs), 1);
  return rows.map((row) => el("div", {class: "barrow"},
    el("span", {class: "name"}, `${row.key}=${row.value}`),
    el("span", {class: `bar ${row.visible ? "visible" : "invisible"}`,
                style: `width: ${(70 * row.pairs / most).toFixed(1)}%`}),
    el("span", {class: "count"}, row.pairs)));
}

async function showOverview() {
  const data = await api("/api/overview");
  const s = data.summary;
  $("summary").replaceChildren(...[["objects", s.objects], ["selected", s.selected],
    ["image requests", s.requests], ["images", s.images], ["pairs", s.pairs],
    ["model", s.model_id + (s.untrained ? " (UNTRAINED)" : "")], ["scored caption", s.score_caption]]
    .map(([name, value]) => el("div", {class: "stat"}, el("b", {}, value), el("span", {}, name))));
  $("histogram").replaceChildren(histogram(data.histogram, data.cuts));
  $("top-tags").replaceChildren(...bars(data.top_tags));
  table($("collections"), data.collections);
  table($("splits"), data.splits);
  table($("stages"), data.stages);
}

// ---- SQL ----------------------------------------------------------------------------------

$("sql-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  const started = performance.now();
  api("/api/sql", {method: "POST", headers: {"content-type": "application/json"},
                   body: JSON.stringify({query: $("sql-query").value})})
    .then((result) => {
      const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c, r[i]])));
      table($("sql-result"), rows);
      $("sql-status").textContent = `${rows.length} rows in ${Math.round(performance.now() - started)} ms` +
        (result.truncated ? ` (cut at ${result.row_cap} rows)` : "");
    })
    .catch((e) => showError(e.message));
});

// ---- routing ------------------------------------------------------------------------------

const VIEWS = ["search", "pair", "overview", "sql"];

async function route() {
  const [, view = "", arg] = location.hash.split("/");
  const name = VIEWS.includes(view) ? view : "search";
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === name));
  showError("");
  try {
    if (name === "pair") await showPair(arg);
    if (name === "overview") await showOverview();
  } catch (e) {
    showError(e.message);
  }
}

async function start() {
  try {
    const data = await api("/api/overview");
    $("model").textContent = `${data.summary.pairs} pairs · ${data.summary.model_id}`;
    $("untrained-model").textContent = data.summary.model_id;
    $("untrained").hidden = !data.summary.untrained;
  } catch (e) {
    showError(e.message);
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
