// The registry's map: its own vector tiles on a plain background (no base map, no remote glyph or sprite files;
// no text is drawn on the map, names show in the popups and the result list).
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const base = location.origin + cfg.root;
  const TITLES = {
    counties: "县级区划 / county", townships: "乡级区划 / township", villages: "村级区划 / village",
    boundary_lines: "界线 / boundary line", markers: "界桩 / boundary marker", addresses: "地址 / address",
    facilities: "设施 / facility", places: "地名 / place name",
  };
  const sources = {};
  for (const name of cfg.layers) sources[name] = { type: "vector", url: `${base}/tiles/${name}.json` };
  const L = (id, source, type, paint, extra) => Object.assign({ id, source, "source-layer": source, type, paint }, extra || {});
  const isLine = ["match", ["geometry-type"], ["LineString", "MultiLineString"], true, false];
  const isPoint = ["match", ["geometry-type"], ["Point", "MultiPoint"], true, false];
  const layers = [
    { id: "background", type: "background", paint: { "background-color": "#eef0ea" } },
    L("counties-fill", "counties", "fill", { "fill-color": "#dfe7d6", "fill-opacity": 0.6 }),
    L("townships-fill", "townships", "fill", { "fill-color": "#c9d6bb", "fill-opacity": 0.01 }),
    L("villages-fill", "villages", "fill", { "fill-color": "#c9d6bb", "fill-opacity": 0.01 }),
    L("villages-line", "villages", "line", { "line-color": "#b3bfa6", "line-width": 0.6 }),
    L("townships-line", "townships", "line", { "line-color": "#8f9c80", "line-width": 1 }),
    L("counties-line", "counties", "line", { "line-color": "#5f6e52", "line-width": 1.4 }),
    L("places-line", "places", "line", { "line-color": "#ffffff", "line-width": 3 }, { filter: isLine }),
    L("boundary-lines", "boundary_lines", "line", {
      "line-color": ["match", ["get", "level"], "county", "#b03a2e", "#d98b3a"],
      "line-width": ["match", ["get", "level"], "county", 2.4, 1.4], "line-dasharray": [3, 1.5] }),
    L("places-point", "places", "circle", { "circle-radius": 3, "circle-color": "#7d5ba6" }, { filter: isPoint }),
    L("facilities", "facilities", "circle", { "circle-radius": 5, "circle-color": "#2e86c1",
      "circle-stroke-color": "#fff", "circle-stroke-width": 1 }),
    L("markers", "markers", "circle", { "circle-radius": 4, "circle-color": "#b03a2e",
      "circle-stroke-color": "#fff", "circle-stroke-width": 1.2 }),
    L("addresses", "addresses", "circle", { "circle-radius": ["interpolate", ["linear"], ["zoom"], 14, 2.5, 18, 6],
      "circle-color": "#34495e", "circle-stroke-color": "#fff", "circle-stroke-width": 0.6 }),
  ];
  // what a click picks, nearest first: points, then lines, then the deepest division
  const CLICKABLE = ["addresses", "markers", "facilities", "places-point", "places-line", "boundary-lines",
                     "villages-fill", "townships-fill", "counties-fill"];

  const map = new maplibregl.Map({
    container: "map", center: [cfg.center[0], cfg.center[1]], zoom: cfg.center[2], hash: true,
    style: { version: 8, sources, layers }, attributionControl: false,
  });
  window.registryMap = map; // for the page tests
  map.addControl(new maplibregl.NavigationControl(), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-right");

  // -- layer switches ------------------------------------------------------------------------
  document.querySelectorAll("#legend input[data-layer]").forEach((box) => box.addEventListener("change", () => {
    for (const l of layers) if (l.source === box.dataset.layer) {
      map.setLayoutProperty(l.id, "visibility", box.checked ? "visible" : "none");
    }
  }));

  // -- helpers -------------------------------------------------------------------------------
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const getJSON = async (path) => {
    const r = await fetch(base + path, { headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.detail || r.status);
    return body;
  };
  const table = (obj) => "<table>" + Object.entries(obj).filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `<tr><td><small>${esc(k)}</small></td><td>${esc(v)}</td></tr>`).join("") + "</table>";
  const history = (versions) => "<b>历史 / history</b><ol>" + versions.map((v) =>
    `<li>v${esc(v.version)} · ${esc((v.valid_from || "").slice(0, 10))}${v.valid_to ? " – " + esc(v.valid_to.slice(0, 10)) : " –"}
     · ${esc(v.status)}${v.change_set_id ? " · 变更集 / change set " + esc(v.change_set_id) : ""}</li>`).join("") + "</ol>";

  // -- click: the feature, then its public record and history --------------------------------
  let popup = null;
  async function details(source, f) {
    const id = f.id ?? f.properties.id;
    if (source === "addresses") {
      const a = await getJSON(`/v1/addresses/${id}`);
      const p = a.properties || {};
      return `<div>${esc(p.full_text || p.address || "")}</div>` + table({ 状态: p.status }) +
        `<small>历史需机构密钥 / the history needs an agency key: <a href="${base}/v1/addresses/${id}/history">/v1/addresses/${id}/history</a></small>`;
    }
    if (source === "boundary_lines" || source === "markers") {
      const path = source === "markers" ? "markers" : "boundary-lines";
      const [one, h] = await Promise.all([getJSON(`/v1/${path}/${id}`), getJSON(`/v1/${path}/${id}/history`)]);
      return table(one.properties || {}) + history(h.versions || []);
    }
    if (["counties", "townships", "villages"].includes(source)) {
      const d = await getJSON(`/v1/divisions/${f.properties.nbs_code || f.properties.mca_code}?authority=${f.properties.nbs_code ? "nbs2023" : "mca2025"}`);
      return table({ 全称: d.full_name, 统计代码: d.nbs_code, 民政代码: d.mca_code, 层级: d.level });
    }
    return "";
  }
  map.on("click", async (e) => {
    const hits = map.queryRenderedFeatures(e.point, { layers: CLICKABLE.filter((id) => map.getLayer(id)) });
    if (!hits.length) return;
    hits.sort((a, b) => CLICKABLE.indexOf(a.layer.id) - CLICKABLE.indexOf(b.layer.id));
    const f = hits[0];
    const source = f.source;
    const name = f.properties.name || f.properties.number || f.properties.code || "";
    const body = document.createElement("div");
    body.className = "popup";
    body.dataset.layer = source;
    body.dataset.id = f.id ?? f.properties.id;
    body.innerHTML = `<h3>${esc(name)}</h3><small>${esc(TITLES[source] || source)} · id ${esc(body.dataset.id)}</small>` +
      table(f.properties) + '<div class="record">…</div>';
    if (popup) popup.remove();
    popup = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat).setDOMContent(body).addTo(map);
    try {
      body.querySelector(".record").innerHTML = await details(source, f);
    } catch (err) {
      body.querySelector(".record").textContent = "记录读取失败 / could not read the record: " + err.message;
    }
  });
  map.on("mousemove", (e) => {
    const n = map.queryRenderedFeatures(e.point, { layers: CLICKABLE.slice(0, 6).filter((id) => map.getLayer(id)) }).length;
    map.getCanvas().style.cursor = n ? "pointer" : "";
  });

  // -- search: autocomplete while typing, /v1/search on submit, fly to a result -------------
  const q = document.getElementById("q");
  const sugg = document.getElementById("suggestions");
  const results = document.getElementById("results");
  let timer = null;
  let marker = null;
  function flyTo(r) {
    if (r.lon == null || r.lat == null) return;
    const zoom = r.kind === "address" ? 17 : r.kind === "division" ? (r.level === "county" ? 10 : r.level === "township" ? 12 : 14) : 15;
    map.flyTo({ center: [r.lon, r.lat], zoom, speed: 2 });
    if (marker) marker.remove();
    marker = new maplibregl.Marker({ color: "#c0392b" }).setLngLat([r.lon, r.lat]).addTo(map);
  }
  async function search(text) {
    sugg.hidden = true;
    if (!text.trim()) return;
    let body;
    try {
      body = await getJSON(`/v1/search?q=${encodeURIComponent(text)}&limit=8`);
    } catch (err) {
      results.hidden = false;
      results.innerHTML = `<p style="padding:8px">${esc(err.message)}</p>`;
      return;
    }
    const list = body.results || [];
    results.hidden = false;
    results.innerHTML = list.length ? "<ul>" + list.map((r, i) =>
      `<li data-i="${i}" class="result">${esc(r.address || r.name)}<br><small>${esc(r.kind)}${r.code ? " · " + esc(r.code) : ""}${r.low_confidence ? " · 低置信 / low confidence" : ""}</small></li>`).join("") + "</ul>"
      : '<p style="padding:8px">无结果 / no result</p>';
    results.querySelectorAll("li").forEach((li) => li.addEventListener("click", () => flyTo(list[+li.dataset.i])));
    if (list.length) flyTo(list[0]);
  }
  q.addEventListener("input", () => {
    clearTimeout(timer);
    const text = q.value;
    if (!text.trim()) { sugg.hidden = true; return; }
    timer = setTimeout(async () => {
      try {
        const body = await getJSON(`/v1/autocomplete?q=${encodeURIComponent(text)}&limit=8`);
        const list = body.suggestions || [];
        sugg.innerHTML = list.map((s) => `<li data-q="${esc(s.address || s.text)}">${esc(s.address || s.text)} <small>${esc(s.kind)}</small></li>`).join("");
        sugg.hidden = !list.length;
        sugg.querySelectorAll("li").forEach((li) => li.addEventListener("mousedown", (ev) => {
          ev.preventDefault();
          q.value = li.dataset.q;
          search(q.value);
        }));
      } catch (err) { sugg.hidden = true; }
    }, 150);
  });
  document.getElementById("search").addEventListener("submit", (ev) => { ev.preventDefault(); search(q.value); });
  q.addEventListener("blur", () => setTimeout(() => { sugg.hidden = true; }, 200));

  // -- editor view: /map?change_set=ID draws an inspection change set before and after -------
  const csId = new URLSearchParams(location.search).get("change_set");
  if (csId) {
    const panel = document.getElementById("changeset");
    panel.hidden = false;
    const form = panel.querySelector("form");
    const status = panel.querySelector(".status");
    const ROLE_COLOURS = { line_before: "#7f8c8d", line_after: "#c0392b", marker_before: "#7f8c8d",
      marker_after: "#c0392b", marker_move: "#c0392b", marker_added: "#27ae60", marker_removed: "#000000",
      address_changing_side: "#e67e22" };
    const colour = ["match", ["get", "role"], ...Object.entries(ROLE_COLOURS).flat(), "#333"];
    async function draw(key) {
      status.textContent = "…";
      const r = await fetch(`${base}/map/change-sets/${encodeURIComponent(csId)}.geojson`,
        { headers: key ? { "X-API-Key": key } : {} });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) { status.textContent = body.detail || r.status; return; }
      sessionStorage.setItem("registry-editor-key", key);
      const cs = body.change_set;
      const n = (role) => body.features.filter((f) => f.properties.role === role).length;
      status.innerHTML = `变更集 / change set ${esc(cs.id)} · ${esc(cs.kind)} · ${esc(cs.status)}<br>` +
        `界线 / lines ${n("line_after")} · 移位界桩 / moved markers ${n("marker_after")} · 新设 / added ${n("marker_added")}` +
        ` · 撤除 / removed ${n("marker_removed")} · 改属地址 / addresses changing sides ${n("address_changing_side")}`;
      const data = { type: "FeatureCollection", features: body.features };
      if (map.getSource("changeset")) { map.getSource("changeset").setData(data); } else {
        map.addSource("changeset", { type: "geojson", data });
        const role = (names) => ["in", ["get", "role"], ["literal", names]];
        map.addLayer({ id: "cs-line-before", type: "line", source: "changeset", filter: role(["line_before"]),
          paint: { "line-color": colour, "line-width": 3, "line-dasharray": [2, 2] } });
        map.addLayer({ id: "cs-line-after", type: "line", source: "changeset", filter: role(["line_after", "marker_move"]),
          paint: { "line-color": colour, "line-width": 3 } });
        map.addLayer({ id: "cs-points", type: "circle", source: "changeset",
          filter: role(["marker_before", "marker_after", "marker_added", "marker_removed", "address_changing_side"]),
          paint: { "circle-radius": 6, "circle-color": colour, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
      }
      const b = new maplibregl.LngLatBounds();
      const add = (c) => (typeof c[0] === "number" ? b.extend(c) : c.forEach(add));
      body.features.forEach((f) => add(f.geometry.coordinates));
      if (!b.isEmpty()) map.fitBounds(b, { padding: { top: 80, bottom: 60, left: 60, right: 420 }, maxZoom: 17 });  // clear of the panel
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); draw(form.key.value.trim()); });
    const saved = sessionStorage.getItem("registry-editor-key");
    if (saved) { form.key.value = saved; map.once("load", () => draw(saved)); }
  }
})();
