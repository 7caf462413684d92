"""The ceiling of the API benchmark: Flask alone, answering a small JSON under gunicorn."""

from flask import Flask, request

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def ok() -> dict[str, bool]:
    """Parse the JSON body if there is one, as a real endpoint would, and answer a small JSON."""
    request.get_json(silent=True)
    return {"ok": True}
