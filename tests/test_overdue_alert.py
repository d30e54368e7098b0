"""Overdue sharing applications raise the alert hook: the sensor, evaluated tick after tick as the daemon
does, posts each application once per clock step to a real loopback webhook, never on every tick."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import DagsterInstance, build_sensor_context

from citybrain.resource_catalog.export import CURRENT, JSON_FILE, export_dir
from citybrain.sharing import accounts, applications
from citybrain.sharing.config import SharingConfig
from citybrain.sharing.store import open_store
from orchestration.alerts import ALERT_WEBHOOK_ENV, alert_text
from orchestration.sensors import overdue_applications_alert
from tests.sharing_lake import AREA_CODE, VISIT_CODE, write_catalog
from tests.test_schedules_sensors import Webhook

CONFIG = SharingConfig()  # no holidays: working days are Monday to Friday
LONG_AGO = date(2026, 11, 2)  # a Monday, weeks before any day these tests run on
PASSWORD = "a long passphrase"


def _tick(instance, cursor):
    return overdue_applications_alert.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))


def test_overdue_applications_are_alerted_once_per_application_and_clock_step(lake, monkeypatch):
    monkeypatch.delenv("CITYBRAIN_SHARING_DB_URL", raising=False)
    with DagsterInstance.ephemeral() as instance:
        assert "no sharing database" in _tick(instance, None).skip_message  # nothing created just to say so

        resources = write_catalog(export_dir() / CURRENT / JSON_FILE)
        store = open_store()
        consumer = accounts.create_account(store, "li", "CJJ", "consumer", PASSWORD)
        office = accounts.create_account(store, "chen", "SJJ", "data_office", PASSWORD)
        until = date.today() + timedelta(days=90)
        first = applications.apply(store, CONFIG, consumer, resources[AREA_CODE], purpose="districts",
                                   columns=["area_code"], period_end=until, today=LONG_AGO)  # fmt: skip
        assert first.due_on == date(2026, 11, 4)  # two working days after Monday

        with Webhook() as hook:
            monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
            cursor = _tick(instance, None).cursor
            assert [[a["application_id"] for a in b["applications"]] for b in hook.bodies] == [[first.id]]
            (body,) = hook.bodies
            assert body["alert"] == "overdue_applications"
            (alerted,) = body["applications"]
            assert (alerted["resource_code"], alerted["tier"], alerted["status"], alerted["due_on"]) == (
                AREA_CODE, "open", "submitted", "2026-11-04",
            )  # fmt: skip
            assert alerted["days_late"] == (date.today() - date(2026, 11, 4)).days
            assert f"#{first.id} {AREA_CODE}" in alert_text(body)

            cursor = _tick(instance, cursor).cursor
            cursor = _tick(instance, cursor).cursor
            assert len(hook.bodies) == 1, "the same clock step is alerted once, not every tick"

            second = applications.apply(store, CONFIG, consumer, resources[VISIT_CODE], purpose="visits",
                                        columns=["visit_no"], period_end=until, today=LONG_AGO)  # fmt: skip
            cursor = _tick(instance, cursor).cursor
            assert [a["application_id"] for a in hook.bodies[-1]["applications"]] == [second.id]

            # Escalating keeps the running clock: no new alert. Forwarding starts a new (late) clock: one.
            applications.escalate(store, office, first.id, "no answer from the provider")
            applications.forward(store, CONFIG, office, second.id, today=LONG_AGO + timedelta(days=1))
            cursor = _tick(instance, cursor).cursor
            assert len(hook.bodies) == 3
            (forwarded,) = hook.bodies[-1]["applications"]
            assert (forwarded["application_id"], forwarded["status"], forwarded["due_on"]) == (
                second.id, "forwarded", "2026-11-10",  # Tuesday + 5 working days
            )  # fmt: skip

            # Decided applications leave the cursor; nothing more is sent.
            applications.decide(store, office, first.id, "refuse", reason="not needed any more")
            applications.decide(store, office, second.id, "refuse", reason="not needed any more")
            result = _tick(instance, cursor)
            assert result.cursor == "[]" and len(hook.bodies) == 3
        store.engine.dispose()
