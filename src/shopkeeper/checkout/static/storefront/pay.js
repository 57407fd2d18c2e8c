// The payment page. Two paths, chosen by the server:
// - "payment" (real Stripe): the Payment Element confirms in the browser and Stripe sends the
//   customer back to the return URL (the confirmation page).
// - "card" (offline, localstripe): its Stripe.js stand-in has a card element but cannot confirm
//   a card itself, so the card is tokenised here and the server confirms the PaymentIntent;
//   a 3D Secure step, if asked for, is done with confirmCardPayment.
// A declined card shows the reason and leaves the form ready for another try.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("payment-config").textContent);
  const form = document.getElementById("payment-form");
  const button = document.getElementById("pay-button");
  const message = document.getElementById("payment-message");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const stripe = Stripe(config.publishableKey);

  function setBusy(busy) {
    button.disabled = busy;
    button.textContent = busy ? "Paying…" : button.dataset.label;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showError(text) {
    message.textContent = text || "The payment did not go through. Please try again.";
    message.hidden = false;
  }

  function clearError() {
    message.textContent = "";
    message.hidden = true;
  }

  function completeUrl(intentId, clientSecret) {
    const query = new URLSearchParams({
      payment_intent: intentId,
      payment_intent_client_secret: clientSecret,
    });
    return config.completeUrl + "?" + query.toString();
  }

  function setUpPaymentElement() {
    const elements = stripe.elements({ clientSecret: config.clientSecret });
    elements.create("payment").mount("#payment-element");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearError();
      setBusy(true);
      const result = await stripe.confirmPayment({
        elements: elements,
        confirmParams: { return_url: config.returnUrl },
      });
      // Only reached when confirmation failed at once; success leaves for the return URL.
      showError(result.error && result.error.message);
      setBusy(false);
    });
    button.disabled = false;
  }

  async function confirmOnServer(paymentMethod) {
    const response = await fetch(config.confirmUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: new URLSearchParams({ payment_method: paymentMethod }),
    });
    const body = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      throw new Error(body.detail || body.title || "The payment did not go through.");
    }
    return body;
  }

  function setUpCardElement() {
    const card = stripe.elements().create("card");
    card.mount("#card-element");
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearError();
      setBusy(true);
      try {
        if (!card.value) {
          throw new Error("Enter your card number, expiry date and CVC.");
        }
        const tokenResult = await stripe.createToken(card);
        if (tokenResult.error || !tokenResult.token) {
          throw new Error("Check the card number, expiry date (MM / YY) and CVC.");
        }
        const intent = await confirmOnServer(tokenResult.token.card.id);
        if (intent.status === "requires_action") {
          const result = await stripe.confirmCardPayment(intent.client_secret, {
            payment_method: { card: card },
          });
          const confirmed = result.paymentIntent && result.paymentIntent.status;
          if (result.error || !["succeeded", "requires_capture", "processing"].includes(confirmed)) {
            throw new Error((result.error && result.error.message) ||
              "The card could not be authenticated. Please try again.");
          }
        }
        window.location.assign(completeUrl(intent.payment_intent, intent.client_secret));
      } catch (error) {
        showError(error.message);
        setBusy(false);
      }
    });
    button.disabled = false;
  }

  if (config.mode === "card") {
    setUpCardElement();
  } else {
    setUpPaymentElement();
  }
})();
