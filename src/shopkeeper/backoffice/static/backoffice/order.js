// The order page: action dialogs that call the JSON API, and a panel kept fresh by polling.
// Hand-written, no dependencies. Every change goes through /api/admin/...; the server decides
// what is allowed, this script only asks and shows the answer.
(function () {
  "use strict";

  const root = document.getElementById("order-root");
  if (!root) return;
  const panelUrl = root.dataset.panelUrl;
  const POLL_PENDING_MS = 3000;
  const POLL_IDLE_MS = 15000;

  // ---- small helpers -------------------------------------------------------------------
  function panel() {
    return document.getElementById("order-panel");
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // Outside a secure context randomUUID is missing; build a v4 UUID from getRandomValues.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function formatMinor(minor, exponent) {
    const negative = minor < 0;
    const digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
    const units = exponent ? digits.slice(0, -exponent) : digits;
    const fraction = exponent ? "." + digits.slice(-exponent) : "";
    return (negative ? "-" : "") + units + fraction;
  }

  // Parse "12.50" exactly into minor units; null when it is not an amount in this currency.
  function parseMinor(text, exponent) {
    const match = /^(\d{1,15})(?:\.(\d+))?$/.exec((text || "").trim());
    if (!match) return null;
    const fraction = match[2] || "";
    if (fraction.length > exponent) return null;
    return Number(match[1]) * 10 ** exponent + Number(fraction.padEnd(exponent, "0") || "0");
  }

  function showMessage(text, kind) {
    const box = document.getElementById("messages");
    const p = document.createElement("p");
    p.className = `message message-${kind}`;
    p.setAttribute("role", kind === "error" ? "alert" : "status");
    p.textContent = text;
    box.replaceChildren(p);
  }

  function problemText(data, status) {
    if (data && (data.detail || data.title)) return data.detail || data.title;
    if (status === 0) return "The server could not be reached. Nothing was confirmed; try again.";
    return `The request failed (HTTP ${status}).`;
  }

  async function callApi(url, body, idempotencyKey) {
    const headers = {
      "Content-Type": "application/json",
      Accept: "application/json",
      "X-CSRFToken": csrfToken(),
    };
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (error) {
      return { ok: false, status: 0, data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  }

  // ---- the panel: swap in a fresh server-rendered copy ---------------------------------
  let etag = null;
  let pollTimer = null;
  let refreshWanted = false;
  let signedOut = false;

  function dialogOpen() {
    return Boolean(document.querySelector("dialog[open]"));
  }

  async function refreshPanel() {
    if (dialogOpen()) {
      // Never replace a dialog under the user's hands; refresh once it closes.
      refreshWanted = true;
      return;
    }
    refreshWanted = false;
    const headers = { "X-Requested-With": "fetch" };
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(panelUrl, { headers, credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      return;
    }
    if (response.status === 304) return;
    if (response.redirected) {
      // Only the login page answers with a redirect: the session has ended.
      signedOut = true;
      showMessage("You have been signed out. Reload the page to sign in again.", "error");
      return;
    }
    if (!response.ok) return;
    const html = await response.text();
    etag = response.headers.get("ETag");
    if (dialogOpen()) {
      refreshWanted = true;
      return;
    }
    const current = panel();
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (current && fresh && fresh.id === "order-panel") current.replaceWith(fresh);
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    const current = panel();
    const pending = current && current.dataset.pending === "true";
    if (signedOut) return;
    pollTimer = setTimeout(async () => {
      if (!document.hidden) await refreshPanel();
      schedulePoll();
    }, pending ? POLL_PENDING_MS : POLL_IDLE_MS);
  }

  async function refreshAndReschedule() {
    await refreshPanel();
    schedulePoll();
  }

  // ---- dialogs -------------------------------------------------------------------------
  function openDialog(dialog, opener) {
    const form = dialog.querySelector("form");
    if (form) form.reset();
    dialog.dataset.idempotencyKey = newKey();
    if (opener && opener.dataset.refundId) dialog.dataset.refundId = opener.dataset.refundId;
    if (opener && opener.dataset.refundSummary) {
      const summary = dialog.querySelector("[data-refund-summary]");
      if (summary) summary.textContent = opener.dataset.refundSummary;
    }
    setDialogError(dialog, "");
    showStep(dialog, "form");
    const flow = flowOf(dialog);
    if (flow.open) flow.open(dialog);
    if (dialog.id === "refund-dialog") {
      syncRefundAmount(dialog);
      setApprovalNotes(dialog, null);
      previewRefund(dialog);
    }
    dialog.showModal();
  }

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  function setDialogError(dialog, text) {
    dialog.querySelectorAll(".dialog-error").forEach((box) => {
      box.textContent = text;
      box.className = text ? "dialog-error message message-error" : "dialog-error";
    });
  }

  function showStep(dialog, step) {
    dialog.querySelectorAll("[data-step]").forEach((el) => {
      el.hidden = el.dataset.step !== step;
    });
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // A failure: input errors stay in the dialog (fixable, new key); state conflicts close it
  // and show the reason on the page; unknown outcomes keep the key so a retry is safe.
  function handleFailure(dialog, result) {
    const text = problemText(result.data, result.status);
    if (result.status === 0 || result.status >= 500) {
      setDialogError(dialog, text);
      return;
    }
    dialog.dataset.idempotencyKey = newKey();
    if (result.status === 422 || result.status === 400) {
      setDialogError(dialog, text);
      showStep(dialog, "form");
      return;
    }
    closeDialog(dialog);
    showMessage(text, "error");
    refreshAndReschedule();
  }

  async function submitDialog(dialog, button, url, body, successText) {
    if (button.disabled) return;
    setBusy(button, true);
    setDialogError(dialog, "");
    try {
      const result = await callApi(url, body, dialog.dataset.idempotencyKey);
      if (result.ok) {
        closeDialog(dialog);
        const message = successText(result.data || {});
        showMessage(message.text, message.kind || "success");
        await refreshAndReschedule();
      } else {
        handleFailure(dialog, result);
      }
    } finally {
      setBusy(button, false);
    }
  }

  // ---- refund --------------------------------------------------------------------------
  function refundFacts(dialog) {
    return {
      exponent: Number(dialog.dataset.exponent),
      currency: dialog.dataset.currency,
      refundable: Number(dialog.dataset.refundableMinor),
      shipping: Number(dialog.dataset.shippingMinor || 0),
      card: dialog.dataset.card,
    };
  }

  function chosenLines(dialog) {
    const lines = [];
    dialog.querySelectorAll("tr[data-line-id]").forEach((row) => {
      const quantity = Number(row.querySelector("input[name=quantity]").value || 0);
      if (quantity > 0) {
        lines.push({
          line_id: Number(row.dataset.lineId),
          quantity,
          restock: row.querySelector("input[name=restock]").checked,
          unit: Number(row.dataset.unitMinor),
        });
      }
    });
    return lines;
  }

  // With lines or shipping chosen the amount follows from them; otherwise it is typed.
  function syncRefundAmount(dialog) {
    const facts = refundFacts(dialog);
    const amount = dialog.querySelector("input[name=amount]");
    const shipping = dialog.querySelector("input[name=include_shipping]");
    const lines = chosenLines(dialog);
    const byLines = lines.length > 0 || (shipping && shipping.checked);
    if (byLines) {
      let minor = lines.reduce((sum, line) => sum + line.unit * line.quantity, 0);
      if (shipping && shipping.checked) minor += facts.shipping;
      amount.value = formatMinor(minor, facts.exponent);
      amount.readOnly = true;
    } else {
      if (amount.readOnly) amount.value = formatMinor(facts.refundable, facts.exponent);
      amount.readOnly = false;
    }
  }

  function refundRequest(dialog) {
    const facts = refundFacts(dialog);
    const form = dialog.querySelector("form");
    const minor = parseMinor(form.amount.value, facts.exponent);
    if (minor === null || minor <= 0) {
      return { error: `Enter an amount greater than zero, such as ${formatMinor(facts.refundable, facts.exponent)}.` };
    }
    if (minor > facts.refundable) {
      return {
        error: `At most ${formatMinor(facts.refundable, facts.exponent)} ${facts.currency} can be refunded.`,
      };
    }
    if (!form.reason.value) return { error: "Choose a reason." };
    const body = {
      reason: form.reason.value,
      note: form.note.value.trim(),
      notify_customer: form.notify_customer.checked,
    };
    const lines = chosenLines(dialog);
    const includeShipping = form.include_shipping ? form.include_shipping.checked : false;
    if (lines.length || includeShipping) {
      body.lines = lines.map(({ line_id, quantity, restock }) => ({ line_id, quantity, restock }));
      body.include_shipping = includeShipping;
    } else {
      body.amount = formatMinor(minor, facts.exponent);
    }
    return { body, text: `${formatMinor(minor, facts.exponent)} ${facts.currency}` };
  }

  // Whether the chosen refund would wait for a manager's approval: the server decides (the
  // preview endpoint runs the same rule as the refund itself); this only shows its sentence.
  let previewTimer = null;
  let previewSeq = 0;

  function setApprovalNotes(dialog, answer) {
    dialog.querySelectorAll("[data-approval-note]").forEach((note) => {
      const text = answer ? answer.message : "";
      note.textContent = text;
      note.hidden = !text;
      note.dataset.needsApproval = answer && answer.needs_approval ? "true" : "false";
    });
  }

  async function previewRefund(dialog) {
    const seq = ++previewSeq;
    const request = refundRequest(dialog);
    if (request.error) {
      setApprovalNotes(dialog, null);
      return null;
    }
    const { reason, note, notify_customer, ...body } = request.body;
    const result = await callApi(dialog.dataset.previewUrl, body, null);
    if (seq !== previewSeq) return undefined; // a newer preview was asked for meanwhile
    const answer = result.ok ? result.data : null;
    setApprovalNotes(dialog, answer);
    return answer;
  }

  function schedulePreview(dialog) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => previewRefund(dialog), 250);
  }

  function refundOutcome(data) {
    const refund = data.refund || data;
    const amount = refund.amount ? `${refund.amount} ${refund.currency || ""}`.trim() : "The refund";
    switch (refund.status) {
      case "succeeded":
        return { text: `Refunded ${amount}.` };
      case "pending":
        return { text: `Refund of ${amount} sent to Stripe; it is pending and will update here.`, kind: "info" };
      case "awaiting_approval":
        return { text: `Refund of ${amount} is above your limit and awaits approval by a manager.`, kind: "info" };
      case "failed":
        return { text: `Refund of ${amount} failed: ${refund.failure_message || "Stripe did not send it"}.`, kind: "error" };
      default:
        return { text: `Refund of ${amount}: ${refund.status}.`, kind: "info" };
    }
  }

  // ---- wiring --------------------------------------------------------------------------
  const flows = {
    "refund-dialog": {
      async review(dialog, button) {
        const request = refundRequest(dialog);
        if (request.error) {
          setDialogError(dialog, request.error);
          return;
        }
        setDialogError(dialog, "");
        clearTimeout(previewTimer);
        setBusy(button, true);
        let answer;
        try {
          answer = await previewRefund(dialog);
        } finally {
          setBusy(button, false);
        }
        const card = refundFacts(dialog).card;
        const question = dialog.querySelector("[data-confirm-question]");
        const confirm = dialog.querySelector("[data-action=confirm]");
        if (answer && answer.needs_approval) {
          question.textContent = `Ask a manager to approve a refund of ${request.text} to ${card}?`;
          confirm.textContent = `Request approval for ${request.text}`;
        } else {
          question.textContent = `Refund ${request.text} to ${card}?`;
          confirm.textContent = `Refund ${request.text}`;
        }
        showStep(dialog, "confirm");
      },
      confirm(dialog, button) {
        const request = refundRequest(dialog);
        if (request.error) {
          setDialogError(dialog, request.error);
          showStep(dialog, "form");
          return;
        }
        submitDialog(dialog, button, dialog.dataset.url, request.body, refundOutcome);
      },
    },
    "cancel-dialog": {
      confirm(dialog, button) {
        const form = dialog.querySelector("form");
        const reason = form.reason.value.trim();
        if (!reason) {
          setDialogError(dialog, "A reason is required to cancel an order.");
          return;
        }
        const body = { reason, notify_customer: form.notify_customer.checked };
        submitDialog(dialog, button, dialog.dataset.url, body, () => ({ text: "Order cancelled." }));
      },
    },
    "capture-dialog": {
      confirm(dialog, button) {
        const exponent = Number(dialog.dataset.exponent);
        const capturable = Number(dialog.dataset.capturableMinor);
        const text = dialog.querySelector("form").amount.value;
        const minor = parseMinor(text, exponent);
        if (minor === null || minor <= 0 || minor > capturable) {
          setDialogError(
            dialog,
            `Enter an amount from ${formatMinor(1, exponent)} to ${formatMinor(capturable, exponent)} ${dialog.dataset.currency}.`,
          );
          return;
        }
        const amount = formatMinor(minor, exponent);
        submitDialog(dialog, button, dialog.dataset.url, { amount }, () => ({
          text: `Captured ${amount} ${dialog.dataset.currency}.`,
        }));
      },
    },
    "approve-dialog": {
      confirm(dialog, button) {
        const url = dialog.dataset.urlTemplate.replace("{id}", dialog.dataset.refundId);
        const note = dialog.querySelector("form").note.value.trim();
        submitDialog(dialog, button, url, { note }, refundOutcome);
      },
    },
    "reject-dialog": {
      confirm(dialog, button) {
        const url = dialog.dataset.urlTemplate.replace("{id}", dialog.dataset.refundId);
        const note = dialog.querySelector("form").note.value.trim();
        submitDialog(dialog, button, url, { note }, () => ({ text: "Refund request rejected." }));
      },
    },
  };

  // A dialog's flow: by its id, or by `data-flow` for one of many alike (one per return).
  function flowOf(dialog) {
    return flows[dialog.dataset.flow || dialog.id] || {};
  }

  // For the other dialogs' script (fulfilment.js), which adds its flows here.
  window.shopkeeperOrder = {
    flows, callApi, submitDialog, setDialogError, showStep, setBusy, problemText, refundOutcome,
  };

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) openDialog(dialog, opener);
      return;
    }
    const control = event.target.closest("dialog [data-action]");
    if (!control) return;
    const dialog = control.closest("dialog");
    const flow = flowOf(dialog);
    const action = control.dataset.action;
    event.preventDefault();
    if (action === "close") closeDialog(dialog);
    else if (action === "back") showStep(dialog, "form");
    else if (action === "review" && flow.review) flow.review(dialog, control);
    else if (action === "confirm" && flow.confirm) flow.confirm(dialog, control);
  });

  document.addEventListener("input", (event) => {
    const dialog = event.target.closest("#refund-dialog");
    if (!dialog) return;
    if (event.target.name !== "amount") syncRefundAmount(dialog);
    if (["amount", "quantity", "include_shipping"].includes(event.target.name)) schedulePreview(dialog);
  });

  // Enter in a dialog field means "next step", never a native form submission.
  document.addEventListener("submit", (event) => {
    const dialog = event.target.closest("dialog");
    if (!dialog) return;
    event.preventDefault();
    const next = dialog.querySelector("[data-step]:not([hidden]) [data-action=review], [data-step]:not([hidden]) [data-action=confirm]")
      || dialog.querySelector("[data-action=confirm]");
    if (next) next.click();
  });

  document.addEventListener(
    "close",
    (event) => {
      if (event.target.tagName === "DIALOG" && refreshWanted) refreshAndReschedule();
    },
    true,
  );

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshAndReschedule();
  });

  schedulePoll();
})();
