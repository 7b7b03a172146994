"""The WSGI script of tests/integration/python_app.py: its paste pipeline, loaded from the
python_app.ini beside this file."""
import os

from paste.deploy import loadapp

application = loadapp("config:python_app.ini", relative_to=os.path.dirname(__file__))
