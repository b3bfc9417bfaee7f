"""A real Flask app, served with --app flaskapp:app."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from flask"


@app.route("/echo", methods=["POST"])
def echo():
    return jsonify(got=request.get_data(as_text=True), form=request.form.to_dict())


def create_app():
    """For --call."""
    return app
