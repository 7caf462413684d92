from flask.testing import FlaskClient

from app import create_app
from tests.stacks import Stack


def test_healthy_when_database_and_broker_answer(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_unavailable_names_the_failing_part(migrated: Stack) -> None:
    config = migrated.config()
    config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    config["CELERY_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"
    response = create_app(config).test_client().get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] != "ok"
    assert checks["broker"] != "ok"
