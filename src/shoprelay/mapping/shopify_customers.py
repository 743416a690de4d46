"""Shopify customers, and the people behind orders, to Klaviyo profiles. Pure."""

from __future__ import annotations

from typing import Any

from shoprelay.mapping.klaviyo import KlaviyoLocation, KlaviyoProfile, unique_id
from shoprelay.mapping.shopify_fields import UnmappableError, bounded, payload_of
from shoprelay.mapping.values import (
    as_dict,
    as_dicts,
    e164,
    email_address,
    identifier,
    known,
    text,
)


def _address_of(customer: dict[str, Any]) -> dict[str, Any]:
    return as_dict(customer.get("default_address")) or next(
        iter(as_dicts(customer.get("addresses"))), {}
    )


def _location(address: dict[str, Any]) -> KlaviyoLocation:
    return KlaviyoLocation(
        address1=text(address.get("address1")),
        address2=text(address.get("address2")),
        city=text(address.get("city")),
        region=text(address.get("province")),
        zip=text(address.get("zip")),
        country=text(address.get("country")) or text(address.get("country_name")),
    )


def _customer_properties(customer: dict[str, Any], place: KlaviyoLocation) -> dict[str, Any]:
    """The seed's profile properties; the address ones repeat `location` for segmenting."""
    verified = customer.get("verified_email")
    properties = {
        "Shopify ID": identifier(customer.get("id")),
        "Verified Email": verified if isinstance(verified, bool) else None,
        "Customer State": text(customer.get("state")),
        "Address1": place.address1,
        "City": place.city,
        "Region": place.region,
        "Zip": place.zip,
        "Country": place.country,
    }
    return known(properties)


def _contact(
    emails: tuple[object, ...], phones: tuple[object, ...], country_hint: str | None
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """The first usable email and phone, and a note for each one that was present but unusable."""
    email = next((found for raw in emails if (found := email_address(raw))), None)
    phone = next((found for raw in phones if (found := e164(raw, country_hint))), None)
    notes = []
    if email is None and any(text(raw) for raw in emails):
        notes.append("email dropped: not an address")
    if phone is None and any(text(raw) for raw in phones):
        notes.append("phone_number dropped: not E.164")
    return email, phone, tuple(notes)


def person(
    shop: str,
    what: str,
    customer: dict[str, Any],
    *,
    emails: tuple[object, ...],
    phones: tuple[object, ...],
    fallback_address: dict[str, Any],
) -> KlaviyoProfile:
    """A profile from a customer object, filling gaps from the order or checkout around it."""
    address = _address_of(customer) or fallback_address
    email, phone, notes = _contact(emails, phones, text(address.get("country_code")))
    customer_id = identifier(customer.get("id"))
    place = _location(address)
    profile = KlaviyoProfile(
        email=email,
        phone_number=phone,
        external_id=None if customer_id is None else unique_id("shopify", shop, customer_id),
        first_name=text(customer.get("first_name")) or text(fallback_address.get("first_name")),
        last_name=text(customer.get("last_name")) or text(fallback_address.get("last_name")),
        location=place if place.to_attributes() else None,
        properties=bounded(_customer_properties(customer, place)),
        notes=notes,
    )
    if not profile.identified:
        raise UnmappableError(f"{what} has no email, no E.164 phone and no customer id")
    return profile


def customer_to_profile(customer: dict[str, Any], shop: str) -> KlaviyoProfile:
    """The Klaviyo profile of a customers/create or customers/update payload."""
    customer = payload_of(customer, "customer")
    what = f"customer {identifier(customer.get('id')) or '(no id)'}"
    return person(
        shop,
        what,
        customer,
        emails=(customer.get("email"),),
        phones=(customer.get("phone"),),
        fallback_address={},
    )


def order_profile(order: dict[str, Any], shop: str) -> KlaviyoProfile:
    """Who placed the order: its customer, else the order's own contact and billing address."""
    order = payload_of(order, "order")
    customer = as_dict(order.get("customer"))
    return person(
        shop,
        f"order {identifier(order.get('id')) or '(no id)'}",
        customer,
        emails=(customer.get("email"), order.get("email"), order.get("contact_email")),
        phones=(customer.get("phone"), order.get("phone")),
        fallback_address=as_dict(order.get("billing_address")),
    )
