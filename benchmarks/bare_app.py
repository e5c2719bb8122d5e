"""The baseline for benchmarks: a bare Flask endpoint answering a JSON body like a lookup's."""

from flask import Flask, jsonify

app = Flask(__name__)

BODY = {
    "found": True,
    "phone": "+27721234567",
    "contact": {
        "id": "2916509f-f188-42d8-ab0e-a27bcb20d70d",
        "name": "James May",
        "first_name": "James",
        "last_name": "May",
        "company": "My Company name",
        "customer_number": "3008821",
        "email": "james@may.com",
        "mobile_phone": "+27721234567",
        "business_phone": None,
        "business_phone2": None,
        "entity_type": "Account",
    },
    "cached": True,
    "stale": False,
    "screen_pop_url": None,
}


@app.get("/bare")
def bare():
    return jsonify(BODY)
