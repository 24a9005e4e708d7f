from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers and lookup audit"

    def ready(self) -> None:
        # Registers the deploy check on the database role.
        from customers import checks  # noqa: F401

        # A process forked from this one makes its own database pool and connections.
        from solarproof_portal import database

        database.register_fork_handler()
