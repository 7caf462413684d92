"""The interactive API docs work offline: Swagger UI comes from the server, not a CDN."""

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, expect

pytestmark = pytest.mark.parametrize("stack", ["embedded"], indirect=True)


def test_the_docs_page_lists_every_operation_with_nothing_from_outside(
    page: Page, base_url: str
) -> None:
    outside: list[str] = []
    refused: list[str] = []

    def on_request(request: Request) -> None:
        if not request.url.startswith(base_url):
            outside.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    spec = page.request.get("/api/openapi.json").json()
    methods = {"get", "put", "post", "delete", "patch"}
    operations = sum(len(methods & set(item)) for item in spec["paths"].values())
    page.goto("/api/docs")
    expect(page.get_by_text("Create a poll that closes itself at its close date.")).to_be_visible()
    expect(page.locator(".opblock")).to_have_count(operations)
    assert not outside and not refused
