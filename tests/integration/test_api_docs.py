"""/api/docs works offline: Swagger UI's scripts, styles and icons come from our static files."""

from __future__ import annotations

import re

import pytest
from django.test import Client

ASSET = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"')


def test_given_no_network_when_opening_the_api_docs_then_every_asset_is_served_by_us() -> None:
    client = Client()
    page = client.get("/api/docs")

    assert page.status_code == 200
    assets = ASSET.findall(page.content.decode())
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
    assert any(asset.endswith("swagger-ui.css") for asset in assets), assets
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not one of our static files"
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content])


@pytest.mark.django_db
def test_given_the_api_docs_then_the_schema_they_load_is_ours() -> None:
    schema = Client().get("/api/openapi.json")

    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Shopkeeper API"
