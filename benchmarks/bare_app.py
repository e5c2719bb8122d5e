"""The baseline for benchmarks: a bare Flask endpoint answering a JSON body like a lookup's."""

from flask import Flask, jsonify

from tests.contacts import JAMES_CONTACT

app = Flask(__name__)

BODY = {
    "found": True,
    "phone": "+27721234567",
    "contact": JAMES_CONTACT,
    "cached": True,
    "stale": False,
    "screen_pop_url": None,
    "number_info": {
        "region": "ZA",
        "type": "mobile",
        "description": "South Africa",
        "carrier": "Vodacom",
    },
}


@app.get("/bare")
def bare():
    return jsonify(BODY)
