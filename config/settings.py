"""Settings from PROPDESK_* environment variables and an optional TOML file (PROPDESK_CONFIG)."""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class StaffGroup(BaseModel):
    """A staff chat that receives ticket cards: a Telegram group (chat id) or, later, a WeCom robot (key)."""

    channel: str = "telegram"
    chat_id: str


class Route(BaseModel):
    """Tickets matching every non-empty field go to `groups`; an empty field matches anything."""

    groups: list[str]
    estate: list[str] = []  # estate codes
    kind: list[str] = []
    category: list[str] = []
    urgency: list[str] = []
    building: list[str] = []
    # How a matching ticket gets its assignee: "grab" (抢单: the groups' first claim wins), "assign" (to the staff
    # member with phone `assignee`), or "round_robin" (the estate's staff of `trade`, longest since a ticket first).
    # Only outside business hours (config/sla.toml's calendar): e.g. the on-duty (值班) group for emergencies at night.
    after_hours: bool | None = None
    mode: Literal["grab", "assign", "round_robin"] = "grab"
    assignee: str | None = None
    trade: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROPDESK_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///propdesk.db"
    # SQLite only (its PRAGMA synchronous). NORMAL, WAL's usual setting: every commit survives a crash of
    # propdesk, a power cut may take the last ones back. FULL: each commit reaches the disk before the owner is
    # answered, at the price of a disk flush per message.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
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
    # The learned model beside the rules in conversations. Off until the flows pass with it: on short answers
    # (a visit time, a unit) it still moves labels the flows rely on. `propdesk classify` uses it by default.
    triage_model: bool = False
    upload_dir: str = "uploads"
    # Seed the demo estate on first start when the database is empty.
    seed_demo_on_empty: bool = True
    # Secret for signed links; generated per process when unset.
    secret_key: str = Field(default_factory=lambda: os.urandom(16).hex())
    # The local web chat and its staff pane (the embedded default channel). Meant for loopback or an intranet.
    web_chat_enabled: bool = True
    max_upload_bytes: int = 10 * 1024 * 1024
    # The web chat's demo (talk as any roster owner, the demo page): None = on only when http_host is loopback.
    # On a public address it stays off unless set to true explicitly.
    web_demo: bool | None = None

    # The staff console (/console): sessions, sign-in throttling, and which hosts may receive state changes.
    console_session_hours: float = 12  # a session ends this long after sign-in
    console_idle_minutes: float = 120  # ... or after this long without a request
    login_max_failures: int = 5  # wrong passwords per phone within the window before a lockout
    login_address_max_failures: int = 20  # wrong passwords per client address within the window
    login_window_minutes: float = 15
    login_lockout_minutes: float = 15
    # Secure cookies: "auto" (when the request came over https, or X-Forwarded-Proto says so behind a trusted
    # proxy), "always" or "never".
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Behind a reverse proxy: take the client address from X-Forwarded-For and the scheme from X-Forwarded-Proto.
    trust_proxy_headers: bool = False
    # Hosts (Host header, port optional) that may receive state-changing staff requests; empty: loopback names
    # and the host of public_base_url.
    allowed_hosts: list[str] = []

    # Staff groups by name, and the routing of tickets to them (first matching routes; else default_group,
    # or every group when that is unset). As JSON in the environment, or tables in the TOML file.
    staff_groups: dict[str, StaffGroup] = {}
    routes: list[Route] = []
    default_group: str | None = None
    # Language of staff cards and staff-side messages.
    staff_lang: str = "zh"

    # Telegram: the channel starts when the token is set. The base URL also serves a self-hosted Bot API server.
    telegram_token: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    # An HTTP(S) proxy for the Bot API calls (e.g. where api.telegram.org is reachable only through one).
    telegram_proxy: str | None = None
    # The bot's @username, for the deep links `propdesk qrcode` prints.
    telegram_bot_username: str | None = None
    # Webhook mode when set (served by propdesk's own aiohttp server); polling otherwise.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_path: str = "/telegram/webhook"
    # How often a 429 (flood limit) is retried after its retry_after before the outbox takes over.
    telegram_max_retries: int = 5
    # How many updates are processed at once (one chat's updates always in order).
    telegram_concurrent_updates: int = 8
    # Telegram's flood limits, kept by python-telegram-bot's rate limiter: overall per second (0: none, e.g. for a
    # self-hosted Bot API server), per group per period.
    telegram_overall_per_second: float = 30
    telegram_group_limit: int = 20
    telegram_group_period_seconds: float = 60

    # WeChat official account (公众号): the channel starts when token, app id and secret are set. With an AES key
    # (EncodingAESKey) safe and compatible mode messages are decrypted and answered encrypted.
    wechat_token: str | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_aes_key: str | None = None
    wechat_path: str = "/wechat"
    wechat_api_base_url: str = "https://api.weixin.qq.com"
    wechat_mp_base_url: str = "https://mp.weixin.qq.com"  # where QR-code images are fetched
    # WeChat waits 5 s for an answer: one ready within this many seconds is answered in the request, anything
    # later goes out through the customer-service message API.
    wechat_reply_within_seconds: float = 3.5
    # A signed callback whose timestamp is further than this from now is refused (and so is a nonce already used
    # within that window with another body): a captured signature cannot be replayed.
    wechat_timestamp_tolerance_seconds: int = 300
    # Template messages for status updates outside the customer-service window: {"status": "<template id>"}.
    wechat_templates: dict[str, str] = {}

    # WeCom (企业微信) group robots as staff groups: StaffGroup(channel="wecom", chat_id=<robot key>).
    wecom_api_base_url: str = "https://qyapi.weixin.qq.com"
    wecom_robot_limit: int = 20  # messages per robot per period
    wecom_robot_period_seconds: float = 60
    # Where staff open propdesk from a robot card's link (the mobile staff page), and how long a link lasts.
    public_base_url: str = "http://127.0.0.1:8080"
    staff_link_hours: int = 72

    # Fee reminders: this many days before a bill falls due, and arrears (催缴) once a month from this day.
    fee_due_days_before: int = 3
    fee_arrears_day: int = 5
    # No reminders or notices to owners in these local hours (emergencies are never held back).
    quiet_hours: str = "21:00-08:00"
    log_level: str = "INFO"
    log_format: Literal["kv", "json"] = "kv"  # key=value lines, or one JSON object a line
    access_log: bool = False
    metrics_token: str | None = None  # GET /metrics with "Authorization: Bearer <token>"; off when unset
    # The managers' daily digest (to the staff group named "managers"), local time.
    digest_time: str = "08:00"
    # The managers' service reports (to the same group): weekly for the last Monday-to-Sunday week, on this day of
    # the week (mon … sun), and monthly for the last calendar month, on this day of the month; local times.
    report_weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    report_weekly_time: str = "08:30"
    report_monthly_day: int = Field(default=1, ge=1, le=28)
    report_monthly_time: str = "08:30"

    # New tickets from one chat account: this many a minute, with bursts of up to ticket_rate_burst (0: no limit);
    # over it the owner is asked to wait. A whole channel: at most ticket_channel_per_minute, with an alert to the
    # staff group ticket_alert_group (else the delivery fallback group, else the default group). Emergencies are
    # never refused: over a limit, one is added to the owner's open emergency.
    ticket_rate_per_minute: float = 3
    ticket_rate_burst: int = 5
    ticket_channel_per_minute: int = 120
    ticket_alert_group: str | None = None

    # Outbox delivery: attempts before a message is marked failed, and the first retry's delay (doubles).
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 2.0
    # Retries go on while a message matters, the delay doubling up to this cap: a staff card until its ticket is
    # closed or cancelled, any other message (an owner's reply, an update) for this many hours. After
    # delivery_max_attempts failures the ticket's timeline says the message is late (it is still retried).
    delivery_max_backoff_seconds: float = 300
    delivery_give_up_hours: float = 12
    # A ticket's card that has not reached its group for this many minutes goes to this staff group as well (e.g.
    # the on-duty group; a staff group name), marked as standing in for the unreachable one.
    delivery_fallback_group: str | None = None
    delivery_fallback_after_minutes: float = 5

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
