// The order page's shipment, return and note dialogs: flows added to order.js's, which opens
// them, calls the JSON API and swaps in the fresh panel. The server decides what is allowed
// and what a return's refund comes to; this script only asks and shows the answer.
(function () {
  "use strict";

  const order = window.shopkeeperOrder;
  if (!order) return;
  const { flows, callApi, submitDialog, setDialogError, showStep, setBusy, problemText, refundOutcome } = order;

  // The picked rows of a dialog's table: each with its SKU, name, quantity and checkbox.
  function pickedLines(dialog) {
    const lines = [];
    for (const row of dialog.querySelectorAll("tr[data-sku]")) {
      const input = row.querySelector("input[name=quantity]");
      const restock = row.querySelector("input[name=restock]");
      const reason = row.querySelector("select[name=reason]");
      lines.push({
        sku: row.dataset.sku,
        name: row.dataset.name,
        quantity: Number(input.value || 0),
        max: Number(input.max),
        valid: /^\d+$/.test((input.value || "0").trim()),
        restock: restock ? restock.checked : false,
        reason: reason ? reason.value : "",
        reasonText: reason ? reason.selectedOptions[0].textContent.toLowerCase() : "",
      });
    }
    return lines;
  }

  // Quantities whole, within 0..max each; `atLeastOne` demands some line above 0.
  function quantityError(lines, atLeastOne) {
    const wrong = lines.find((line) => !line.valid || line.quantity < 0 || line.quantity > line.max);
    if (wrong) return `Enter a quantity of ${wrong.name} from 0 to ${wrong.max}.`;
    if (atLeastOne && !lines.some((line) => line.quantity > 0)) return "Enter a quantity above 0 for at least one item.";
    return "";
  }

  function units(lines) {
    return lines
      .filter((line) => line.quantity > 0)
      .map((line) => `${line.quantity} × ${line.name}`)
      .join(", ");
  }

  // A flow whose form step checks the input and says in words what the confirm step will do.
  function reviewed(check, submit) {
    return {
      review(dialog) {
        const checked = check(dialog);
        if (checked.error) {
          setDialogError(dialog, checked.error);
          return;
        }
        setDialogError(dialog, "");
        dialog.querySelector("[data-confirm-question]").textContent = checked.question;
        showStep(dialog, "confirm");
      },
      confirm(dialog, button) {
        const checked = check(dialog);
        if (checked.error) {
          setDialogError(dialog, checked.error);
          showStep(dialog, "form");
          return;
        }
        submit(dialog, button, checked);
      },
    };
  }

  function shipCheck(dialog) {
    const lines = pickedLines(dialog);
    const error = quantityError(lines, true);
    if (error) return { error };
    const form = dialog.querySelector("form");
    const carrier = form.carrier.value.trim();
    const tracking = form.tracking_number.value.trim();
    const via = carrier ? ` with ${carrier}` : "";
    const tracked = tracking ? `, tracking number ${tracking}` : ", without a tracking number";
    return {
      question: `Ship ${units(lines)}${via}${tracked}?`,
      body: {
        lines: lines.filter((line) => line.quantity > 0).map(({ sku, quantity }) => ({ sku, quantity })),
        carrier,
        tracking_number: tracking,
      },
    };
  }

  function returnCheck(dialog) {
    const lines = pickedLines(dialog);
    const error = quantityError(lines, true);
    if (error) return { error };
    const chosen = lines.filter((line) => line.quantity > 0);
    const why = chosen.map((line) => `${line.quantity} × ${line.name} (${line.reasonText})`).join(", ");
    return {
      question: `Ask for ${why} back?`,
      body: {
        lines: chosen.map(({ sku, quantity, reason }) => ({ sku, quantity, reason })),
        note: dialog.querySelector("form").note.value.trim(),
      },
    };
  }

  function receiveCheck(dialog) {
    const lines = pickedLines(dialog);
    const error = quantityError(lines, false);
    if (error) return { error };
    const restocked = lines.filter((line) => line.restock && line.quantity > 0);
    const received = units(lines) || "nothing";
    const stock = restocked.length ? `; back in stock: ${units(restocked)}` : "; nothing goes back in stock";
    return {
      question: `Received ${received}${stock}?`,
      body: { lines: lines.map(({ sku, quantity, restock }) => ({ sku, quantity, restock })) },
    };
  }

  // ---- a return's refund: the amount and the approval wait come from the refund engine ----
  let previewSeq = 0;

  function returnRefundBody(dialog) {
    const box = dialog.querySelector("input[name=include_shipping]");
    return { include_shipping: box ? box.checked : false };
  }

  async function previewReturnRefund(dialog) {
    const seq = ++previewSeq;
    const amount = dialog.querySelector("[data-refund-amount]");
    const lines = Array.from(dialog.querySelectorAll("li[data-line-id]"), (item) => ({
      line_id: Number(item.dataset.lineId),
      quantity: Number(item.dataset.quantity),
      restock: false,
    }));
    amount.textContent = "…";
    const result = await callApi(dialog.dataset.previewUrl, { lines, ...returnRefundBody(dialog) }, null);
    if (seq !== previewSeq) return null;
    const answer = result.ok ? result.data : null;
    amount.textContent = answer ? `${answer.amount} ${answer.currency}` : "not known";
    dialog.dataset.amountText = answer ? amount.textContent : "";
    dialog.dataset.needsApproval = answer && answer.needs_approval ? "true" : "false";
    dialog.querySelectorAll("[data-approval-note]").forEach((note) => {
      note.textContent = answer ? answer.message : "";
      note.hidden = !note.textContent;
    });
    if (!answer) setDialogError(dialog, problemText(result.data, result.status));
    return answer;
  }

  Object.assign(flows, {
    "ship-dialog": reviewed(shipCheck, (dialog, button, checked) =>
      submitDialog(dialog, button, dialog.dataset.url, checked.body, (data) => ({
        text: `Shipped${data.tracking_number ? `, tracking number ${data.tracking_number}` : ""}.`,
      })),
    ),
    "return-dialog": reviewed(returnCheck, (dialog, button, checked) =>
      submitDialog(dialog, button, dialog.dataset.url, checked.body, (data) => ({
        text: `Return ${data.id} requested; receive it when the goods are back.`,
      })),
    ),
    "receive-return": reviewed(receiveCheck, (dialog, button, checked) =>
      submitDialog(dialog, button, dialog.dataset.url, checked.body, () => ({ text: "Return received." })),
    ),
    "refund-return": {
      open(dialog) {
        setDialogError(dialog, "");
        previewReturnRefund(dialog);
      },
      async review(dialog, button) {
        setBusy(button, true);
        let answer;
        try {
          answer = await previewReturnRefund(dialog);
        } finally {
          setBusy(button, false);
        }
        if (!answer) return;
        const amount = `${answer.amount} ${answer.currency}`;
        const question = dialog.querySelector("[data-confirm-question]");
        const confirm = dialog.querySelector("[data-action=confirm]");
        if (answer.needs_approval) {
          question.textContent = `Ask a manager to approve a refund of ${amount} to ${dialog.dataset.card}?`;
          confirm.textContent = `Request approval for ${amount}`;
        } else {
          question.textContent = `Refund ${amount} to ${dialog.dataset.card}?`;
          confirm.textContent = `Refund ${amount}`;
        }
        showStep(dialog, "confirm");
      },
      confirm(dialog, button) {
        const notify = dialog.querySelector("input[name=notify_customer]");
        const body = { ...returnRefundBody(dialog), notify_customer: notify ? notify.checked : true };
        submitDialog(dialog, button, dialog.dataset.url, body, refundOutcome);
      },
    },
    "reject-return": {
      confirm(dialog, button) {
        const note = dialog.querySelector("form").note.value.trim();
        submitDialog(dialog, button, dialog.dataset.url, { note }, () => ({ text: "Return rejected." }));
      },
    },
    deliver: {
      confirm(dialog, button) {
        submitDialog(dialog, button, dialog.dataset.url, {}, () => ({ text: "Shipment marked delivered." }));
      },
    },
    "note-dialog": {
      confirm(dialog, button) {
        const text = dialog.querySelector("form").text.value.trim();
        if (!text) {
          setDialogError(dialog, "Write the note first.");
          return;
        }
        submitDialog(dialog, button, dialog.dataset.url, { text }, () => ({ text: "Note added." }));
      },
    },
  });

  document.addEventListener("change", (event) => {
    const dialog = event.target.closest("dialog[data-flow=refund-return]");
    if (dialog && event.target.name === "include_shipping") previewReturnRefund(dialog);
  });
})();
