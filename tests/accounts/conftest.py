import pytest


@pytest.fixture
def ivy(identity_provider):
    """Ivy, an installer at the tests' provider, signed in there and ready to come back."""
    identity_provider.add_person(
        "entra-oid-1111",
        preferred_username="ivy@example.com.au",
        email="ivy@example.com.au",
        given_name="Ivy",
        family_name="Installer",
        groups=["portal-installers", "all-staff"],
    )
    identity_provider.sign_in_as("entra-oid-1111")
    return identity_provider
