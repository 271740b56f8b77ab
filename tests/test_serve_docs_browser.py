"""The API docs page in a real browser, under its content security policy: Swagger UI's scripts and styles run."""

from mnistlab.serve.app import create_app
from serve_support import live_server, save_untrained_checkpoints


def test_docs_page_runs_under_its_content_security_policy(chromium, tmp_path):
    app = create_app(save_untrained_checkpoints(tmp_path, names=("ann",)))
    with live_server(app) as base_url:
        page = chromium.new_page()
        messages, requests = [], []
        page.on("console", lambda message: messages.append(message.text))
        page.on("pageerror", lambda error: messages.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        try:
            response = page.goto(base_url + "/docs")
            assert "script-src 'self' 'unsafe-inline'" in response.headers["content-security-policy"]
            page.wait_for_selector("#swagger-ui .swagger-ui", timeout=10_000)  # the inline start-up script ran
            page.wait_for_load_state("networkidle")
            page.wait_for_selector(".opblock", timeout=10_000)  # the spec rendered: its operations are listed
            rendered = page.inner_text("#swagger-ui")
        finally:
            page.close()
    assert not [text for text in messages if "Content Security Policy" in text], messages
    assert any(url.endswith("/openapi.json") for url in requests), requests  # Swagger UI fetched the spec
    assert all(url.startswith(base_url) for url in requests), requests
    assert "Unable to render this definition" not in rendered and "/api/models" in rendered
