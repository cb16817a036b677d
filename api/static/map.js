// gridmend dispatcher map: GeoJSON layers from /v1/map/*, live updates over SSE, and a side
// list of work orders where a click (re)assigns a crew. No base tiles: the grid and the
// road network are drawn as layers, so the page works without internet.
"use strict";

const COLOURS = { critical: "#b0006d", high: "#e66a00", normal: "#e6b800" };
const state = { key: "", crews: [], orders: [], selected: null, refreshTimer: null };

function readKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("key");
  if (fromLink) {
    localStorage.setItem("gridmend-key", fromLink);
    history.replaceState(null, "", location.pathname);
  }
  return fromLink || localStorage.getItem("gridmend-key") || "";
}

function say(text) {
  document.getElementById("message").textContent = text;
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-API-Key": state.key }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new Error(error.message || response.statusText);
  }
  return body;
}

const map = L.map("map", { preferCanvas: false, zoomControl: true });
map.setView([48.45, 7.88], 13);
// Thousands of grid and road features draw on one canvas; live features stay SVG elements.
const canvas = L.canvas({ padding: 0.5 });
const layers = {
  roads: L.geoJSON(null, {
    style: { color: "#c9c2b0", weight: 2, renderer: canvas },
    interactive: false,
  }),
  grid: L.geoJSON(null, {
    style: { color: "#7a8794", weight: 1, renderer: canvas },
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { radius: 2, color: "#55606b", weight: 1, renderer: canvas }),
    interactive: false,
  }),
  outages: L.geoJSON(null, {
    style: () => ({ color: "#d93030", weight: 1, fillOpacity: 0.2, className: "outage" }),
  }),
  routes: L.geoJSON(null, {
    style: (f) => ({ color: "#2a6fdb", weight: 3, dashArray: "6 6", className: "route route-" + f.id }),
  }),
  faults: L.geoJSON(null, {
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, {
        radius: 9,
        color: "#222",
        weight: 1,
        fillColor: COLOURS[f.properties.priority_class] || COLOURS.normal,
        fillOpacity: 0.9,
        className: "fault fault-" + f.id,
      }),
    onEachFeature: (f, layer) => {
      const p = f.properties;
      layer.bindPopup(
        `<b>${p.fault_id}</b> ${p.device_kind} ${p.device_id}<br>` +
          `${p.customers} customers, ${p.critical_customers} critical, ${p.reports} reports<br>` +
          `work order ${p.work_order_id || "—"} (${p.work_order_state || "none"}), crew ${p.crew_id || "—"}`
      );
      layer.on("click", () => selectOrder(p.work_order_id));
    },
  }),
  escalations: L.geoJSON(null, {
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { radius: 14, color: "#a40000", weight: 3, fill: false, className: "escalation" }),
  }),
  crews: L.geoJSON(null, {
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, {
        radius: 7,
        color: "#fff",
        weight: 2,
        fillColor: "#2a6fdb",
        fillOpacity: 1,
        className: "crew crew-" + f.id,
      }).bindTooltip(f.properties.staff_number, { permanent: true, className: "crew-label", direction: "right" }),
  }),
};
for (const name of ["roads", "grid", "outages", "routes", "faults", "escalations", "crews"]) {
  layers[name].addTo(map);
}
L.control.layers(null, layers, { collapsed: true }).addTo(map);

async function loadBase() {
  const summary = await api("/v1/map/summary");
  document.getElementById("grid-name").textContent = summary.grid;
  const [w, s, e, n] = summary.bounds;
  map.fitBounds([[s, w], [n, e]]);
  const grid = await api("/v1/map/grid");
  layers.grid.clearLayers().addData(grid);
  if (summary.roads) {
    layers.roads.clearLayers().addData(await api("/v1/map/roads"));
  }
}

async function refresh() {
  const [faults, outages, crews, routes, escalations, orders] = await Promise.all([
    api("/v1/map/faults"),
    api("/v1/map/outages"),
    api("/v1/map/crews"),
    api("/v1/map/routes"),
    api("/v1/map/escalations"),
    api("/v1/work-orders?state=open"),
  ]);
  layers.faults.clearLayers().addData(faults);
  layers.outages.clearLayers().addData(outages);
  layers.crews.clearLayers().addData(crews);
  layers.routes.clearLayers().addData(routes);
  layers.escalations.clearLayers().addData(escalations);
  state.crews = crews.features.map((f) => f.properties);
  state.orders = orders.work_orders;
  const classes = {};
  for (const f of faults.features) classes[f.properties.work_order_id] = f.properties.priority_class;
  renderOrders(classes);
  renderEscalations(orders.escalations);
  document.getElementById("counts").textContent =
    `${faults.features.length} faults · ${state.orders.length} open work orders · ${crews.features.length} crews`;
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => refresh().catch((e) => say(e.message)), 150);
}

function eta(order) {
  if (!order.eta) return "no ETA";
  const t = (s) => new Date(s * 1000).toISOString().slice(11, 16);
  return `ETA ${t(order.eta.earliest)}–${t(order.eta.latest)} UTC`;
}

function renderOrders(classes) {
  const list = document.getElementById("workorders");
  list.replaceChildren();
  const sorted = [...state.orders].sort((a, b) => (b.priority || 0) - (a.priority || 0));
  for (const order of sorted) {
    const item = document.createElement("li");
    item.dataset.wo = order.work_order_id;
    item.className = classes[order.work_order_id] || "normal";
    if (order.work_order_id === state.selected) item.classList.add("selected");
    const options = state.crews
      .map((c) => `<option value="${c.crew_id}" ${c.crew_id === order.crew_id ? "selected" : ""}>` +
        `${c.crew_id} (${c.staff_number}, ${c.status})</option>`)
      .join("");
    item.innerHTML =
      `<div><b>${order.work_order_id}</b> <span class="state">${order.state}</span> ` +
      `<span class="crew">${order.crew_id || "no crew"}</span></div>` +
      `<div class="meta">${order.device_kind || ""} ${order.device_id || ""} · ${order.customers ?? "?"} customers · ` +
      `priority ${order.priority ?? "—"} · ${eta(order)}</div>` +
      `<select class="assign-crew" aria-label="crew for ${order.work_order_id}">${options}</select> ` +
      `<button class="assign-btn">${order.crew_id ? "Reassign" : "Assign"}</button>`;
    item.addEventListener("click", (event) => {
      if (event.target.tagName !== "SELECT" && event.target.tagName !== "BUTTON") selectOrder(order.work_order_id);
    });
    item.querySelector(".assign-btn").addEventListener("click", () => {
      const crew = item.querySelector(".assign-crew").value;
      assign(order.work_order_id, crew);
    });
    list.appendChild(item);
  }
}

function renderEscalations(escalations) {
  const list = document.getElementById("escalations");
  list.replaceChildren();
  for (const e of escalations) {
    const item = document.createElement("li");
    item.textContent = `${e.work_order_id || ""} ${e.type}: ${e.reason || ""}`;
    list.appendChild(item);
  }
}

function selectOrder(workOrderId) {
  if (!workOrderId) return;
  state.selected = workOrderId;
  for (const li of document.querySelectorAll("#workorders li")) {
    li.classList.toggle("selected", li.dataset.wo === workOrderId);
    if (li.dataset.wo === workOrderId) li.scrollIntoView({ block: "nearest" });
  }
}

async function assign(workOrderId, crewId) {
  try {
    const order = await api(`/v1/work-orders/${encodeURIComponent(workOrderId)}/assign`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ crew_id: crewId }),
    });
    say(`${order.work_order_id} → crew ${order.crew_id} (${order.state})`);
    await refresh();
  } catch (e) {
    say(`assign refused: ${e.message}`);
  }
}

// Server-Sent Events read with fetch, so the API key travels in a header.
async function listen() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const response = await fetch("/v1/map/stream", { headers: { "X-API-Key": state.key } });
      if (!response.ok) throw new Error(`stream: ${response.status}`);
      live.className = "on";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.split("\n").some((line) => line.startsWith("data:"))) scheduleRefresh();
        }
      }
    } catch (e) {
      say(e.message);
    }
    live.className = "off";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function start() {
  state.key = readKey();
  document.getElementById("api-key").value = state.key;
  if (!state.key) {
    say("Enter an API key (gridmend keys create USER).");
    return;
  }
  try {
    await loadBase();
    await refresh();
    listen();
  } catch (e) {
    say(e.message);
  }
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = document.getElementById("api-key").value.trim();
  localStorage.setItem("gridmend-key", state.key);
  start();
});
start();
