"""An OpenStack-like service for tests/integration/test_osprofiler_driver.py: osprofiler
initialized from the service's configuration as keystone and glance do it, its
WsgiMiddleware in front and its SQL tracing on, over the SQLite database beside this file.
Nothing here names tomograph: `connection_string = tomograph://` and the server's
WSGIImportScript line do it all."""
import json
import os

import sqlalchemy
from oslo_config import cfg
from osprofiler import initializer, opts, web
from osprofiler import sqlalchemy as osprofiler_sqlalchemy

HERE = os.path.dirname(__file__)

CONF = cfg.ConfigOpts()
opts.set_defaults(CONF, enabled=True, trace_sqlalchemy=True, hmac_keys="SECRET_KEY",
                  connection_string="tomograph://")
CONF([], project="catalog")
initializer.init_from_conf(conf=CONF, context={}, project="catalog", service="api",
                           host="127.0.0.1")
engine = sqlalchemy.create_engine(f"sqlite:///{HERE}/images.db")
osprofiler_sqlalchemy.add_tracing(sqlalchemy, engine, "db")


def list_images(environ, start_response):
    """The images of an owner (a literal in the SQL text) and of a checksum (a bound
    parameter): two secrets the test gives in the environment (SetEnv)."""
    owner, checksum = environ["CATALOG_OWNER"], environ["CATALOG_CHECKSUM"]
    with engine.connect() as connection:
        by_owner = connection.execute(sqlalchemy.text(
            f"SELECT name FROM images WHERE owner = '{owner}'")).scalars().all()
        by_checksum = connection.execute(sqlalchemy.text(
            "SELECT name FROM images WHERE checksum = :checksum"),
            {"checksum": checksum}).scalars().all()
    body = json.dumps({"by_owner": by_owner, "by_checksum": by_checksum,
                       "module_trace_id": environ.get("TOMOGRAPH_TRACE_ID")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


application = web.WsgiMiddleware(list_images, hmac_keys=CONF.profiler.hmac_keys, enabled=True)
