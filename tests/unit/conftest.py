import pytest


@pytest.fixture(autouse=True)
def fake_gateway():  # unit tests touch no gateway and no database
    yield None
