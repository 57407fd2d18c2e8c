"""The storefront: products, cart, checkout, the payment page and the confirmation page.

Views stay thin. The cart is `cart.SessionCart`, orders are placed by `services.place_order`,
offline card payments go through `card_payment.pay_with_card`, and the confirmation page learns
the outcome through `payments.services.sync_from_stripe`, the path the webhook shares. Domain
errors carry messages that are safe to show, so pages show `error.detail` as it is.

Only the browser session that placed an order may open its payment page: the session keeps the
numbers of the orders it placed, and any other number is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from shopkeeper.catalog.models import Product
from shopkeeper.checkout.card_payment import pay_with_card
from shopkeeper.checkout.cart import SessionCart
from shopkeeper.checkout.forms import (
    AddToCartForm,
    CardConfirmationForm,
    CheckoutForm,
    RemoveFromCartForm,
    UpdateCartForm,
)
from shopkeeper.checkout.services import place_order
from shopkeeper.errors import DomainError, NotFound, PaymentProviderUnavailable
from shopkeeper.orders.links import key_opens, order_link
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.capture_modes import CaptureMode, mode_of
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import current_payment
from shopkeeper.payments.services import sync_from_stripe
from shopkeeper.payments.states import UNPAID_STATUSES
from shopkeeper.problems import problem, problem_for, status_for
from shopkeeper.shipping import shipping_fee

PLACED_ORDERS = "placed_orders"
MAX_REMEMBERED_ORDERS = 20
PROVIDER_DOWN_AT_CHECKOUT = (
    "We could not reach the payment provider, so no order was placed. "
    "Your cart is kept: please try again in a moment."
)
PAID_STATUSES = frozenset({"authorized", "paid", "partially_refunded", "refunded"})


# What the customer reads about their order: (headline, explanation, tone).
PAYMENT_STATUS_TEXT: dict[str, tuple[str, str, str]] = {
    "pending": ("Awaiting payment", "We have not received your payment yet.", "wait"),
    "authorized": ("Payment authorised", "", "ok"),  # the words: CHARGE_TEXT, by capture mode
    "paid": ("Payment received", "Thank you! Your order is paid and is being prepared.", "ok"),
    "failed": (
        "Payment failed",
        "Your payment did not go through, and nothing was charged. You can try again.",
        "bad",
    ),
    "voided": ("Payment cancelled", "The authorisation on your card was released.", "bad"),
    "partially_refunded": ("Partly refunded", "Part of your payment was refunded.", "ok"),
    "refunded": ("Refunded", "Your payment was refunded in full.", "ok"),
}


# When the card is charged, as the order's capture mode has it (payments.capture_modes): what
# the pay page says before paying, and what an authorised order's pages say after.
CHARGE_TEXT: dict[CaptureMode, tuple[str, str]] = {
    CaptureMode.AUTOMATIC: (
        "Your card is charged when you pay.",
        "Thank you! Your card has been authorised.",
    ),
    CaptureMode.MANUAL: (
        "Your card is only authorised when you pay; it is charged once we confirm your order.",
        "Thank you! Your card has been authorised and will be charged once we confirm your order.",
    ),
    CaptureMode.ON_FULFILLMENT: (
        "Your card is only authorised when you pay; it is charged when your order ships, for "
        "what we send.",
        "Thank you! Your card has been authorised and will be charged when your order ships, "
        "for what we send.",
    ),
}


def _capture_mode(detail: dict[str, Any]) -> CaptureMode:
    payment = detail["payment"]
    if payment is None:
        return CaptureMode(settings.SHOPKEEPER_CAPTURE)
    return mode_of(payment["capture_method"], on_fulfillment=payment["capture_on_fulfillment"])


def _order_context(order: Order) -> dict[str, Any]:
    detail = order_detail(order)
    before_paying, authorised = CHARGE_TEXT[_capture_mode(detail)]
    headline, text, tone = PAYMENT_STATUS_TEXT[order.payment_status]
    text = text or authorised
    if order.status == OrderStatus.CANCELLED:
        headline, text, tone = "Order cancelled", "This order was cancelled.", "bad"
    elif detail["payment"] and detail["payment"]["flagged"]:
        headline = "We are checking your payment"
        text, tone = "Your payment needs a manual check; we will contact you by e-mail.", "wait"
    return {
        "order": detail,
        "status": {"headline": headline, "text": text, "tone": tone},
        "charge_note": before_paying,
    }


def _stripe_js_url() -> str:
    """Offline, localstripe serves its Stripe.js stand-in; otherwise Stripe's own."""
    if settings.STRIPE_API_BASE:
        return f"{settings.STRIPE_API_BASE}/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context.setdefault("cart_count", sum(SessionCart(request.session).quantities().values()))
    return render(request, f"storefront/{template}", context, status=status)


def _first_error(form: Any) -> str:
    for field, errors in form.errors.items():
        label = form.fields[field].label or field.replace("_", " ").capitalize()
        return f"{label}: {errors[0]}" if field != "__all__" else str(errors[0])
    return "Invalid input"


# --- Products and cart ---------------------------------------------------------------


@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(active=True).order_by("name", "id")
    return _page(request, "products.html", {"products": products})


@require_GET
def cart(request: HttpRequest) -> HttpResponse:
    contents = SessionCart(request.session).contents()
    for sku in contents.dropped:
        messages.warning(request, f"{sku} is no longer sold and was removed from your cart.")
    return _page(request, "cart.html", {"cart": contents, "unpaid": _unpaid_orders(request)})


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect("storefront:products")
    try:
        product = SessionCart(request.session).add(
            sku=form.cleaned_data["sku"], quantity=form.cleaned_data["quantity"]
        )
    except DomainError as error:
        messages.error(request, error.detail)
        return redirect("storefront:products")
    quantity = form.cleaned_data["quantity"]
    messages.success(request, f"Added {quantity} of {product.name} to your cart.")
    return redirect("storefront:products")


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    form = UpdateCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect("storefront:cart")
    try:
        SessionCart(request.session).update(
            sku=form.cleaned_data["sku"], quantity=form.cleaned_data["quantity"]
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, "Your cart was updated.")
    return redirect("storefront:cart")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    form = RemoveFromCartForm(request.POST)
    if form.is_valid():
        SessionCart(request.session).remove(sku=form.cleaned_data["sku"])
        messages.success(request, "The item was removed from your cart.")
    return redirect("storefront:cart")


# --- Checkout --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    basket = SessionCart(request.session)
    form = CheckoutForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                placed = place_order(
                    email=form.cleaned_data["email"],
                    items=basket.basket_items(),
                    shipping_address=form.shipping_address(),
                )
            except PaymentProviderUnavailable as unavailable:
                # place_order has cancelled the order and returned its stock.
                error, status = PROVIDER_DOWN_AT_CHECKOUT, status_for(unavailable)
            except DomainError as domain_error:
                error, status = domain_error.detail, status_for(domain_error)
            else:
                _remember_order(request, placed.order.number)
                return redirect("storefront:pay", number=placed.order.number)
        else:
            error, status = "Please correct the highlighted fields.", 422
    contents = basket.contents()
    fees = []
    for currency in contents.currencies:
        try:
            fees.append(shipping_fee(currency))
        except DomainError as fee_error:
            error = error or fee_error.detail
    single = len(fees) == 1 and len(contents.subtotals) == 1
    context = {
        "form": form,
        "cart": contents,
        "shipping_fees": fees,
        "grand_total": contents.subtotals[0] + fees[0] if single else None,
        "error": error,
    }
    return _page(request, "checkout.html", context, status=status)


def _remember_order(request: HttpRequest, number: str) -> None:
    placed = [n for n in request.session.get(PLACED_ORDERS, []) if n != number]
    request.session[PLACED_ORDERS] = [*placed, number][-MAX_REMEMBERED_ORDERS:]


def _own_order(request: HttpRequest, number: str) -> Order:
    """The order, if this browser session placed it; a 404 for everyone else."""
    order = Order.objects.filter(number=number).first()
    if order is None or number not in request.session.get(PLACED_ORDERS, []):
        raise Http404("No such order")
    return order


def _unpaid_orders(request: HttpRequest) -> list[Order]:
    numbers = request.session.get(PLACED_ORDERS, [])
    return list(
        Order.objects.filter(
            number__in=numbers, status=OrderStatus.PENDING, payment_status__in=UNPAID_STATUSES
        ).order_by("-created_at")
    )


# --- Payment ---------------------------------------------------------------------------


def _complete_url(intent_id: str, client_secret: str) -> str:
    query = urlencode({"payment_intent": intent_id, "payment_intent_client_secret": client_secret})
    return f"{reverse('storefront:complete')}?{query}"


@require_GET
def pay(request: HttpRequest, number: str) -> HttpResponse:
    order = _own_order(request, number)
    payment = current_payment(order)
    if payment is not None and order.payment_status in PAID_STATUSES:
        return redirect(_complete_url(payment.intent_id, payment.client_secret))
    payable = (
        payment is not None
        and order.status == OrderStatus.PENDING
        and order.payment_status in UNPAID_STATUSES
    )
    offline = settings.STRIPE_API_BASE is not None
    config = {
        "mode": "card" if offline else "payment",
        "publishableKey": settings.STRIPE_PUBLISHABLE_KEY,
        "clientSecret": payment.client_secret if payable and payment else "",
        "confirmUrl": reverse("storefront:pay-confirm", args=[order.number]),
        "returnUrl": request.build_absolute_uri(reverse("storefront:complete")),
        "completeUrl": reverse("storefront:complete"),
    }
    context = {
        **_order_context(order),
        "payable": payable,
        "offline": offline,
        "payment_config": config,
        "stripe_js_url": _stripe_js_url(),
        "last_error": payment.last_error if payment else "",
    }
    return _page(request, "pay.html", context)


@require_POST
def pay_confirm(request: HttpRequest, number: str) -> HttpResponse:
    """Offline only: confirm the order's payment with a card tokenised by localstripe's JS."""
    if settings.STRIPE_API_BASE is None:
        raise Http404("Cards are confirmed in the browser with real Stripe")
    order = _own_order(request, number)
    form = CardConfirmationForm(request.POST)
    if not form.is_valid():
        return problem(422, "invalid_input", "Invalid input", _first_error(form))
    try:
        intent = pay_with_card(order=order, payment_method=form.cleaned_data["payment_method"])
    except DomainError as error:
        return problem_for(error)
    return JsonResponse(
        {
            "status": intent.status,
            "payment_intent": intent.id,
            "client_secret": intent.client_secret,
            "complete_url": _complete_url(intent.id, intent.client_secret),
        }
    )


@require_GET
def complete(request: HttpRequest) -> HttpResponse:
    intent_id = request.GET.get("payment_intent", "")
    client_secret = request.GET.get("payment_intent_client_secret", "")
    if not intent_id or not client_secret:
        raise Http404("No payment given")
    try:
        order = sync_from_stripe(intent_id, client_secret=client_secret)
    except NotFound as error:
        raise Http404("No such payment") from error
    except DomainError as error:
        unknown: dict[str, Any] = {"error": error.detail}
        return _page(request, "complete_unknown.html", unknown, status=status_for(error))
    if order.payment_status in PAID_STATUSES:
        SessionCart(request.session).clear()
    payment = Payment.objects.filter(intent_id=intent_id).first()
    context = {
        **_order_context(order),
        "can_retry": order.number in request.session.get(PLACED_ORDERS, []),
        "last_error": payment.last_error if payment else "",
        "order_link": request.build_absolute_uri(order_link(order.number)),
    }
    return _page(request, "complete.html", context)


@require_GET
def order_page(request: HttpRequest, number: str) -> HttpResponse:
    """The customer's page of an order, opened by its link from any device: status, shipments
    with their tracking, refunds, and the way to pay while it is unpaid."""
    order = Order.objects.filter(number=number).first()
    if order is None or not key_opens(number, request.GET.get("key", "")):
        raise Http404("No such order")
    context = _order_context(order)
    unpaid = order.status == OrderStatus.PENDING and order.payment_status in UNPAID_STATUSES
    if unpaid:
        _remember_order(request, number)  # the link's holder may pay it from this browser
    context["payable"] = unpaid
    context["order_link"] = request.build_absolute_uri(order_link(number))
    return _page(request, "order.html", context)
