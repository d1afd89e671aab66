from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "orchestration"
    verbose_name = "Orchestration"

    def ready(self) -> None:
        from orchestration import receivers
        from orchestration.conf import validate_settings

        validate_settings()
        receivers.connect()
