"use strict";
// The reference customer portal: plain JavaScript against portal-api's /portal/v1 API.
// Every text from the API is set with textContent, never as HTML.

const API = "/portal/v1";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("portal-token");
let customer = sessionStorage.getItem("portal-customer");
let lines = [];
let liveStream = null;

function say(text) { $("status").textContent = text; }
function fail(text) { const e = $("error"); e.textContent = text; e.hidden = !text; }

async function call(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, { ...options, headers });
  if (response.status === 401 && token) { signOut(); throw new Error("Please sign in again."); }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const wait = response.headers.get("Retry-After");
    let text = (body && (body.detail || body.title)) || `Something went wrong (${response.status}).`;
    if (body && Array.isArray(body.errors) && body.errors.length) {
      text += " " + body.errors.map((e) => e.detail).join(" ");
    }
    if (wait) text += ` Try again in ${wait} s.`;
    throw new Error(text);
  }
  return body;
}

// A purchase is one attempt with one Idempotency-Key: a retry after a lost answer reuses it,
// so it can never buy twice.
async function buy(path, body) {
  const key = crypto.randomUUID();
  const options = { method: "POST", body: body ? JSON.stringify(body) : undefined,
                    headers: { "Idempotency-Key": key } };
  try {
    return await call(path, options);
  } catch (error) {
    if (error instanceof TypeError) return call(path, options);  // network error: same attempt
    throw error;
  }
}

function show(view) {
  for (const name of ["lines", "shop", "orders"]) {
    $(`view-${name}`).hidden = name !== view;
    document.querySelector(`[data-view="${name}"]`).setAttribute("aria-pressed", String(name === view));
  }
  if (view === "lines") loadLines();
  if (view === "shop") loadShop();
  if (view === "orders") loadOrders();
}

function signedIn() {
  const on = Boolean(token);
  $("sign-in").hidden = on;
  $("signed-in").hidden = !on;
  $("sign-out").hidden = !on;
  $("who").hidden = !on;
  $("who").textContent = on ? `Signed in as ${customer}` : "";
  if (on) show("lines");
}

function signOut() {
  token = null; customer = null;
  sessionStorage.removeItem("portal-token"); sessionStorage.removeItem("portal-customer");
  if (liveStream) liveStream.abort();
  signedIn();
  $("customer-id").focus();
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function money(value) { return value === null || value === undefined ? "—" : `R${Number(value).toFixed(2)}`; }
function amount(value, unit) { return value === null || value === undefined ? "—" : `${Math.round(value)} ${unit}`; }

async function loadLines() {
  say("Loading your lines…");
  try {
    const body = await call("/lines");
    lines = body.lines;
    const list = $("lines");
    list.replaceChildren();
    for (const line of body.lines) list.append(lineCard(line));
    $("no-lines").hidden = body.lines.length > 0;
    const degraded = $("lines-degraded");
    degraded.hidden = !body.degraded;
    degraded.textContent = body.degraded
      ? "Some balances could not be read just now: the last known figures are shown where we have them." : "";
    say("");
    fail("");
  } catch (error) { say(""); fail(error.message); }
}

function lineCard(line) {
  const card = el("li");
  card.dataset.line = line.id;
  card.append(el("p", line.msisdn || "Number on its way", "msisdn"));
  const badge = el("span", line.status, `badge ${line.status}`);
  const kind = el("p", `${line.simKind || "SIM"} · ${line.paymentType || ""} `);
  kind.append(badge);
  card.append(kind);
  const balance = line.balance;
  if (balance.status === "unavailable") {
    card.append(el("p", "Balance not available right now.", "as-of"));
  } else {
    const dl = el("dl", null, "balance");
    for (const [label, value] of [
      ["Airtime", money(balance.airtime && balance.airtime.amount)],
      ["Data", amount(balance.dataMB, "MB")],
      ["Minutes", amount(balance.voiceMinutes, "min")],
      ["SMS", amount(balance.sms, "")],
    ]) { dl.append(el("dt", label), el("dd", value)); }
    card.append(dl);
    if (balance.status === "stale") {
      card.append(el("p", `As of ${new Date(balance.asOf).toLocaleString()}`, "as-of"));
    }
  }
  if (line.status === "active") {
    if (line.simKind === "eSIM") {
      const qr = el("button", "Show eSIM QR code", "secondary");
      qr.type = "button";
      qr.setAttribute("aria-label", `Show the eSIM QR code of ${line.msisdn || "this line"}`);
      qr.addEventListener("click", () => showEsim(line.id));
      card.append(qr, document.createTextNode(" "));
    }
    const suspend = el("button", "Suspend (lost or stolen)", "danger");
    suspend.type = "button";
    suspend.setAttribute("aria-label", `Suspend ${line.msisdn || "this line"}: lost or stolen`);
    suspend.addEventListener("click", () => suspendLine(line));
    card.append(suspend);
  }
  return card;
}

async function suspendLine(line) {
  if (!window.confirm(`Suspend ${line.msisdn}? Calls and data stop until it is resumed.`)) return;
  try {
    const order = await buy(`/lines/${encodeURIComponent(line.id)}/suspend`);
    follow(order);
  } catch (error) { fail(error.message); }
}

let offers = [];
async function loadShop() {
  try {
    const [offerBody, lineBody] = await Promise.all([call("/offers"), call("/lines")]);
    offers = offerBody.offers;
    lines = lineBody.lines;
    const notices = offerBody.partnerNotices || [];
    const partners = $("partner-notices");
    partners.hidden = notices.length === 0;
    partners.textContent = notices.map((n) => n.message).join(" ");
    const warn = $("offers-degraded");
    warn.hidden = offerBody.status === "current";
    warn.textContent = offerBody.status === "stale" ? "Showing the offers as they were a moment ago."
      : "Offers cannot be shown right now; try again shortly.";
    fill($("line-offer"), offers.filter((o) => o.purchase === "line"), (o) => `${o.name} · ${money(o.price && o.price.amount)}`);
    fill($("bundle-offer"), offers.filter((o) => o.purchase !== "line"), (o) => `${o.name} · ${money(o.price && o.price.amount)}`);
    fill($("bundle-line"), lines.filter((l) => l.status === "active"), (l) => l.msisdn || l.id);
  } catch (error) { fail(error.message); }
}

function fill(select, items, label) {
  select.replaceChildren();
  for (const item of items) {
    const option = el("option", label(item));
    option.value = item.id;
    select.append(option);
  }
}

async function loadOrders() {
  try {
    const body = await call("/orders?limit=20");
    const list = $("orders");
    list.replaceChildren();
    for (const order of body.orders) {
      const card = el("li");
      card.append(el("p", order.title, "msisdn"));
      card.append(el("span", order.state, `badge ${order.state}`));
      card.append(el("p", new Date(order.placedAt).toLocaleString(), "as-of"));
      if (order.failureReason) card.append(el("p", order.failureReason, "error"));
      if (!order.done) {
        const watch = el("button", "Follow progress", "secondary");
        watch.type = "button";
        watch.addEventListener("click", () => follow(order));
        card.append(watch);
      }
      list.append(card);
    }
    if (!body.orders.length) list.append(el("li", "No orders yet."));
  } catch (error) { fail(error.message); }
}

const STEP_NAMES = { acknowledged: "Received", inProgress: "Being set up", pending: "Waiting for you",
  completed: "Done", failed: "Failed", cancelled: "Cancelled" };

function showProgress(order) {
  $("progress").hidden = false;
  $("progress-state").textContent = `${order.title}: ${STEP_NAMES[order.state] || order.state}`;
  $("progress-state").dataset.state = order.state;
  const steps = $("progress-steps");
  const seen = [...steps.children].map((li) => li.dataset.state);
  if (!seen.includes(order.state)) {
    const li = el("li", STEP_NAMES[order.state] || order.state, "done");
    li.dataset.state = order.state;
    steps.append(li);
  }
  if (order.failureReason) fail(order.failureReason);
  const notices = order.partnerNotices || [];
  $("progress-notices").hidden = notices.length === 0;
  $("progress-notices").textContent = notices.map((n) => n.message).join(" ");
  const newLine = order.items.find((item) => item.action === "add" && item.lineId);
  const qr = $("progress-qr");
  qr.hidden = !(order.state === "completed" && newLine && (newLine.simKind || "eSIM") === "eSIM");
  qr.onclick = newLine ? () => showEsim(newLine.lineId) : null;
}

// Live progress by Server-Sent Events, read with fetch so the bearer token goes in a header.
async function follow(order) {
  if (liveStream) liveStream.abort();
  $("progress-steps").replaceChildren();
  showProgress(order);
  $("progress-title").focus();
  liveStream = new AbortController();
  try {
    const response = await fetch(`${API}/orders/${encodeURIComponent(order.id)}/progress`, {
      headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
      signal: liveStream.signal,
    });
    if (!response.ok) throw new Error("Live progress is not available; see My orders.");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue;
        const view = JSON.parse(data);
        showProgress(view);
        if (view.done && view.state === "completed") { say("Your order is complete."); loadLines(); }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") fail(error.message);
  }
}

async function showEsim(lineId) {
  try {
    const esim = await call(`/lines/${encodeURIComponent(lineId)}/esim`);
    $("esim-qr").src = esim.qrCode;
    $("esim-code").textContent = esim.activationCode;
    $("esim").hidden = false;
    $("esim-qr-title").focus();
  } catch (error) { fail(error.message); }
}

function formValue(form, name) { return form.elements[name].value.trim(); }

function valid(form) {
  if (form.checkValidity()) return true;
  const bad = form.querySelector(":invalid");
  fail(`Please check “${form.querySelector(`label[for="${bad.id}"]`).textContent}”.`);
  bad.focus();
  return false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (!valid(form)) return;
    try {
      const session = await call("/demo/session", {
        method: "POST", body: JSON.stringify({ customerId: formValue(form, "customerId") }),
      });
      token = session.accessToken;
      customer = formValue(form, "customerId");
      sessionStorage.setItem("portal-token", token);
      sessionStorage.setItem("portal-customer", customer);
      fail("");
      signedIn();
      $("main").focus();
    } catch (error) { fail(error.message); }
  });
  $("sign-out").addEventListener("click", signOut);
  for (const tab of document.querySelectorAll("[data-view]")) {
    tab.addEventListener("click", () => show(tab.dataset.view));
  }
  $("esim-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (!valid(form)) return;
    const offer = offers.find((o) => o.id === formValue(form, "offeringId"));
    say("Placing your order…");
    try {
      const order = await buy("/orders", {
        kind: "line",
        offeringId: formValue(form, "offeringId"),
        simKind: (offer && offer.simKinds[0]) || "eSIM",
        customer: {
          idType: "sa_id", idNumber: formValue(form, "idNumber"), fullName: formValue(form, "fullName"),
          address: { line1: formValue(form, "line1"), city: formValue(form, "city"),
                     postalCode: formValue(form, "postalCode") },
        },
        bankAccount: formValue(form, "bankAccount"),
      });
      fail(""); say("Order placed.");
      follow(order);
    } catch (error) { say(""); fail(error.message); }
  });
  $("bundle-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    if (!valid(form)) return;
    const offer = offers.find((o) => o.id === formValue(form, "offeringId"));
    try {
      const order = await buy("/orders", {
        kind: offer ? offer.purchase : "bundle",
        offeringId: formValue(form, "offeringId"),
        subscriptionId: formValue(form, "subscriptionId"),
        bankAccount: formValue(form, "bankAccount"),
      });
      fail(""); say("Order placed.");
      follow(order);
    } catch (error) { fail(error.message); }
  });
  $("esim-close").addEventListener("click", () => { $("esim").hidden = true; $("main").focus(); });
  signedIn();
});
