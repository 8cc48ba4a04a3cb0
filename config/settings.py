"""Settings from PROPDESK_* environment variables and an optional TOML file (PROPDESK_CONFIG)."""
from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROPDESK_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///propdesk.db"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Shown to owners on the emergency path and in help texts.
    duty_phone: str = "400-800-1234"
    office_name: str = "物业服务中心"
    default_lang: str = "zh"
    # Ticket numbers, business days and overdue marks follow this time zone.
    timezone: str = "Asia/Shanghai"
    # An abandoned conversation expires after this many minutes of silence.
    conversation_timeout_minutes: int = 30
    # Owners may hurry (催单) a ticket at most once per this many minutes.
    hurry_cooldown_minutes: int = 30
    max_text_length: int = 2000
    # Extra classifier rules (TOML) merged over the shipped config/classifier.toml.
    rules_file: str | None = None
    upload_dir: str = "uploads"
    # Seed the demo estate on first start when the database is empty.
    seed_demo_on_empty: bool = True
    # Secret for signed links; generated per process when unset.
    secret_key: str = Field(default_factory=lambda: os.urandom(16).hex())
    # The local web chat and its staff pane (the embedded default channel). Meant for loopback or an intranet.
    web_chat_enabled: bool = True
    max_upload_bytes: int = 10 * 1024 * 1024

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("PROPDESK_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@lru_cache
def get_settings() -> Settings:
    return Settings()
